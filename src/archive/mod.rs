//! The archive as a whole, outside the sink that writes it: where it lives
//! ([`store`]), SQL over it (`pipe query`, [`query`]) and the table definitions other
//! engines need to read it ([`ddl`]).

pub mod ddl;
pub mod query;
pub mod store;
pub mod table;
