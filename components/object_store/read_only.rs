//! The read-only guarantee of `pipe query` (and of anything else that runs SQL text
//! from a user over an archive): one statement, and only one that reads. Checked
//! twice, by DataFusion's own parser and planner, never by keywords:
//!
//! 1. [`check_read_only`] parses the text with DataFusion's parser and accepts only a
//!    query (`SELECT`, `WITH`, `VALUES`, set operations), `EXPLAIN` of one, `DESCRIBE`
//!    and `SHOW TABLES`/`SHOW COLUMNS`; `SELECT … INTO` is refused too. `COPY`,
//!    `CREATE EXTERNAL TABLE`, every other DDL and DML, `SET` and `RESET` are refused
//!    before a session exists.
//! 2. [`verify_plan`] checks the logical plan with DataFusion's [`SQLOptions`] (no DDL,
//!    no DML, no `COPY`, no statements), in case the parser ever lets something
//!    through that plans into a write.
//!
//! A session for user SQL registers no table provider that reads arbitrary paths:
//! DataFusion's defaults (`generate_series`, `range`) and no URL tables.

use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement};

/// Why SQL text is not run. The caller is at fault; retrying the same text fails
/// the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadOnlyError {
    /// The text does not parse.
    #[error("cannot parse the SQL: {0}")]
    Parse(String),
    /// Not exactly one statement.
    #[error("expected exactly one statement, found {0}")]
    Statements(usize),
    /// A statement that would write, change the session, or read outside the archive.
    #[error(
        "`{0}` is refused: queries are read-only (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SHOW TABLES and SHOW COLUMNS only)"
    )]
    Refused(String),
}

/// Accepts `sql` only if it is exactly one read-only statement.
pub fn check_read_only(sql: &str) -> Result<(), ReadOnlyError> {
    let statements = DFParser::parse_sql(sql).map_err(|e| ReadOnlyError::Parse(e.strip_backtrace()))?;
    if statements.len() != 1 {
        return Err(ReadOnlyError::Statements(statements.len()));
    }
    df_statement(&statements[0])
}

/// The plan check: DataFusion's own [`SQLOptions`] with DDL, DML (and `COPY`) and
/// statements all disallowed.
pub fn verify_plan(plan: &LogicalPlan) -> Result<(), ReadOnlyError> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|e| ReadOnlyError::Refused(e.strip_backtrace()))
}

fn df_statement(s: &DfStatement) -> Result<(), ReadOnlyError> {
    match s {
        DfStatement::Statement(s) => statement(s),
        DfStatement::Explain(e) => df_statement(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(ReadOnlyError::Refused("CREATE EXTERNAL TABLE".into())),
        DfStatement::CopyTo(_) => Err(ReadOnlyError::Refused("COPY".into())),
        DfStatement::Reset(_) => Err(ReadOnlyError::Refused("RESET".into())),
    }
}

fn statement(s: &Statement) -> Result<(), ReadOnlyError> {
    match s {
        Statement::Query(q) => query(q),
        Statement::Explain { statement: inner, .. } => statement(inner),
        Statement::ExplainTable { .. } | Statement::ShowTables { .. } | Statement::ShowColumns { .. } => Ok(()),
        other => Err(ReadOnlyError::Refused(first_words(&other.to_string()))),
    }
}

fn query(q: &Query) -> Result<(), ReadOnlyError> {
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            query(&cte.query)?;
        }
    }
    set_expr(&q.body)
}

fn set_expr(e: &SetExpr) -> Result<(), ReadOnlyError> {
    match e {
        // `SELECT … INTO t` creates a table.
        SetExpr::Select(s) if s.into.is_some() => Err(ReadOnlyError::Refused("SELECT … INTO".into())),
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Ok(()),
        SetExpr::Query(q) => query(q),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left)?;
            set_expr(right)
        }
        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
            Err(ReadOnlyError::Refused(first_words(&s.to_string())))
        }
    }
}

/// The statement's leading keywords (`INSERT INTO`, `SET`), for the message.
fn first_words(sql: &str) -> String {
    sql.split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase()))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass_and_everything_else_is_refused() {
        for ok in [
            "SELECT count(*) FROM logs",
            "WITH t AS (SELECT 1 AS x) SELECT x FROM t UNION ALL SELECT 2",
            "VALUES (1), (2)",
            "EXPLAIN SELECT * FROM logs",
            "EXPLAIN ANALYZE SELECT 1",
            "DESCRIBE logs",
            "SHOW TABLES",
            "SHOW COLUMNS FROM logs",
            "SELECT 'COPY x TO y', \"insert\" FROM logs",
        ] {
            assert_eq!(check_read_only(ok), Ok(()), "{ok}");
        }
        for (bad, word) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("COPY logs TO '/tmp/x.parquet' STORED AS PARQUET", "COPY"),
            (
                "CREATE EXTERNAL TABLE p (a TEXT) STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("INSERT INTO logs VALUES (1)", "INSERT INTO"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("DROP TABLE logs", "DROP TABLE"),
            ("DELETE FROM logs", "DELETE FROM"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            ("SELECT 1 INTO t", "SELECT … INTO"),
            ("WITH t AS (SELECT 1 INTO u) SELECT * FROM t", "SELECT … INTO"),
        ] {
            match check_read_only(bad) {
                Err(ReadOnlyError::Refused(w)) => assert_eq!(w, word, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(check_read_only("SELECT 1; SELECT 2"), Err(ReadOnlyError::Statements(2)));
        assert_eq!(check_read_only(""), Err(ReadOnlyError::Statements(0)));
        assert!(matches!(check_read_only("SELEC 1"), Err(ReadOnlyError::Parse(_))));
    }

    #[tokio::test]
    async fn plans_that_write_are_refused_by_sql_options() {
        let ctx = datafusion::prelude::SessionContext::new();
        for bad in [
            "COPY (SELECT 1) TO '/tmp/pipe-never-written.csv'",
            "CREATE TABLE t AS SELECT 1",
            "SET datafusion.execution.batch_size = 1",
        ] {
            let plan = ctx.state().create_logical_plan(bad).await.unwrap();
            assert!(matches!(verify_plan(&plan), Err(ReadOnlyError::Refused(_))), "{bad}");
        }
        let plan = ctx.state().create_logical_plan("SELECT 1").await.unwrap();
        assert_eq!(verify_plan(&plan), Ok(()));
    }
}
