//! The expense tracker MCP server.
//!
//! Tools: `add_expense`, `list_expenses`, `get_summary`, `update_expense`, `delete_expense`.
//! Resources: `expenses://categories`, `expenses://expense/{id}`, `expenses://summary/{month}`.
//! Prompt: `monthly_review(month)`.
//!
//! Money is exact: an amount is stored as an integer number of the currency's minor unit (cents
//! for USD) with its ISO 4217 code, and an amount with more decimals than the currency has is
//! refused rather than rounded (USD 2, JPY 0, BHD 3; the table is the `iso_currency` crate's).
//! The currency is USD when a call names none. Summaries total each currency separately and
//! never add amounts in different currencies together.
//!
//! Storage is SQLite (a file) or PostgreSQL (a `postgres://` URL), through
//! [`switchboard_store`]: migrations run when the server opens the database, every write is one
//! transaction, and a database from a newer version is refused.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("expenses.sqlite3");
//! let expenses = switchboard_expenses::open(&db.display().to_string()).await?;
//! let server = switchboard_expenses::server(expenses.clone());
//! assert_eq!(server.name(), "switchboard-expenses");
//!
//! let report = expenses
//!     .import(
//!         switchboard_expenses::Format::Json,
//!         r#"[{"id": 1, "amount": 12.50, "category": "food", "description": "lunch", "date": "2026-07-15"}]"#,
//!     )
//!     .await?;
//! assert_eq!(report.imported, 1);
//! let csv = expenses.export(switchboard_expenses::Format::Csv).await?;
//! assert_eq!(csv, "id,date,amount,currency,category,description\n1,2026-07-15,12.50,USD,food,lunch\n");
//! expenses.close().await;
//! # Ok(()) }
//! ```

mod dates;
mod error;
pub mod model;
mod money;
mod queries;
mod resources;
mod tools;
mod transfer;

use switchboard_server::{Server, Tool};
use switchboard_store::{Location, Migrations, Store};

pub use error::ExpensesError;
pub use money::{Currency, DEFAULT_CURRENCY, MAX_AMOUNT_MINOR};
pub use transfer::{CSV_HEADER, Format, ImportReport, MAX_EXPORT_ROWS, MAX_IMPORT_ROWS};

use crate::model::{
    AddExpenseArgs, DeleteExpenseArgs, DeleteOutput, ExpenseOutput, ListExpensesArgs, ListOutput,
    Summary, SummaryArgs, UpdateExpenseArgs,
};

/// The `_meta` key that names the scope a tool needs (shared by every server of the kit).
pub use switchboard_server::SCOPE_META_KEY;
/// Reading expenses.
pub const SCOPE_READ: &str = "expenses:read";
/// Adding and changing expenses.
pub const SCOPE_WRITE: &str = "expenses:write";
/// Deleting expenses.
pub const SCOPE_ADMIN: &str = "expenses:admin";
/// The table that records this server's applied migrations.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations_expenses";

/// The expense database. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Expenses {
    store: Store,
}

fn migrations() -> Migrations {
    Migrations {
        table: MIGRATIONS_TABLE,
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// Open the database named by `db` (a SQLite path, or a `postgres://` URL), creating and
/// migrating it as needed.
pub async fn open(db: &str) -> Result<Expenses, ExpensesError> {
    let location = Location::parse(db)?;
    let store = Store::open(&location, migrations()).await?;
    tracing::debug!(location = store.location(), "opened the expense database");
    Ok(Expenses { store })
}

impl Expenses {
    /// The storage underneath (tests and tools use it to inspect the database).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Close the connection pool.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Build the MCP server over `expenses`.
pub fn server(expenses: Expenses) -> Server {
    let add = expenses.clone();
    let list = expenses.clone();
    let summary = expenses.clone();
    let update = expenses.clone();
    let delete = expenses.clone();
    Server::builder("switchboard-expenses", env!("CARGO_PKG_VERSION"))
        .instructions(
            "An expense tracker. Record spending with add_expense, find it with list_expenses, and see totals with get_summary. \
             Amounts are exact decimals in an ISO 4217 currency (USD unless given); summaries keep each currency separate.",
        )
        .tool(
            Tool::builder(
                "add_expense",
                "Record an expense: an amount (decimal text like \"12.50\" or a number), a category, a description, and optionally the day (YYYY-MM-DD, default today in UTC) and the ISO 4217 currency (default USD). Returns the new expense with its id.",
            )
            .title("Add an expense")
            .additive()
            .open_world(false)
            .scope(SCOPE_WRITE)
            .output::<ExpenseOutput>()
            .handler(move |args: AddExpenseArgs, _| {
                let expenses = add.clone();
                async move { expenses.add_expense(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "list_expenses",
                "List expenses, newest first, optionally only one category and/or a date range (inclusive). Pages hold up to limit (default 50, at most 1000) expenses; pass next_cursor back as cursor for the next page.",
            )
            .title("List expenses")
            .read_only()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_READ)
            .output::<ListOutput>()
            .handler(move |args: ListExpensesArgs, _| {
                let expenses = list.clone();
                async move { expenses.list_expenses(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "get_summary",
                "Total and count of expenses for this week, month or year (period), or between start_date and end_date, grouped by category (default), day or month. Each currency is totalled separately; amounts in different currencies are never added together.",
            )
            .title("Summarise expenses")
            .read_only()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_READ)
            .output::<Summary>()
            .handler(move |args: SummaryArgs, _| {
                let expenses = summary.clone();
                async move { expenses.get_summary(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "update_expense",
                "Change fields of an expense by id; fields not given keep their values. Returns the updated expense.",
            )
            .title("Update an expense")
            .destructive()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_WRITE)
            .output::<ExpenseOutput>()
            .handler(move |args: UpdateExpenseArgs, _| {
                let expenses = update.clone();
                async move { expenses.update_expense(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "delete_expense",
                "Delete an expense by id, for good. Returns what was deleted.",
            )
            .title("Delete an expense")
            .destructive()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_ADMIN)
            .output::<DeleteOutput>()
            .handler(move |args: DeleteExpenseArgs, _| {
                let expenses = delete.clone();
                async move { expenses.delete_expense(args).await }
            }),
        )
        .resource(resources::categories(&expenses))
        .resource_template(resources::expense(&expenses))
        .resource_template(resources::summary(&expenses))
        .prompt(resources::monthly_review(&expenses))
        .build()
        .unwrap_or_else(|error| {
            unreachable!("the expense server's declarations are valid: {error}")
        })
}
