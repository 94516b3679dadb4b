//! The archive as a whole, outside the sink that writes it: where it lives
//! ([`store`]), how its files and partitions form one table ([`table`]), read-only
//! SQL over it (`pipe query`, [`query`], checked by [`read_only`]) and the table
//! definitions other engines need to read it ([`ddl`]).

pub mod ddl;
pub mod query;
pub mod read_only;
pub mod store;
pub mod table;
