//! `pipe convert logstash FILE.conf… [-o FILE]`: a topology from a Logstash
//! pipeline config. Not a component: a tool, listed in [`crate::components::TOOLS`].
//!
//! - [`lexer`] and [`parser`]: Logstash's config grammar to the [`ast`], with line
//!   and column in every error.
//! - [`inputs`], [`filters`] (with [`grok`]), [`outputs`]: the mapping, plugin by
//!   plugin and option by option; what has no equivalent becomes a TODO.
//! - [`sprintf`], [`joda`], [`vrl`]: Logstash strings, date patterns and
//!   conditions in pipe's and VRL's terms.
//! - [`convert`] puts it together; [`topology`] writes the TOML; [`cli`] is the
//!   command.

pub mod ast;
pub mod cli;
pub mod convert;
pub mod filters;
pub mod grok;
pub mod inputs;
pub mod joda;
pub mod lexer;
pub mod opts;
pub mod outputs;
pub mod parser;
pub mod sprintf;
pub mod topology;
pub mod vrl;

pub use cli::COMMANDS;
pub use convert::{Conversion, Options, convert};
