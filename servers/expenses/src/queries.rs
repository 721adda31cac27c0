//! Every SQL statement of the server. Each is one text for both back ends (`$N` placeholders,
//! `INTEGER`/`TEXT` columns, casts on aggregates); see `switchboard_store` for why that works.

use sqlx::{Any, AnyConnection, Executor, Row, any::AnyRow};
use switchboard_store::Backend;

use crate::{model::Expense, money::Currency};

const SELECT_BY_ID: &str = "SELECT id, spent_on, amount_minor, currency, category, description \
     FROM expenses WHERE id = $1";
const SELECT_BY_ID_FOR_UPDATE: &str = "SELECT id, spent_on, amount_minor, currency, category, description \
     FROM expenses WHERE id = $1 FOR UPDATE";

/// An expense's fields before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExpense {
    pub date: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub category: String,
    pub description: String,
}

fn expense(row: &AnyRow) -> Result<Expense, sqlx::Error> {
    let currency: String = row.try_get("currency")?;
    let amount_minor: i64 = row.try_get("amount_minor")?;
    Ok(Expense {
        id: row.try_get("id")?,
        date: row.try_get("spent_on")?,
        amount: Currency::of_stored(&currency).format(amount_minor),
        amount_minor,
        currency,
        category: row.try_get("category")?,
        description: row.try_get("description")?,
    })
}

pub async fn insert(
    connection: &mut AnyConnection,
    new: &NewExpense,
) -> Result<Expense, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO expenses (spent_on, amount_minor, currency, category, description) \
         VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, spent_on, amount_minor, currency, category, description",
    )
    .bind(&new.date)
    .bind(new.amount_minor)
    .bind(new.currency.code())
    .bind(&new.category)
    .bind(&new.description)
    .fetch_one(&mut *connection)
    .await?;
    expense(&row)
}

/// Insert with a given id (imports keep the ids of their file).
pub async fn insert_with_id(
    connection: &mut AnyConnection,
    id: i64,
    new: &NewExpense,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO expenses (id, spent_on, amount_minor, currency, category, description) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(&new.date)
    .bind(new.amount_minor)
    .bind(new.currency.code())
    .bind(&new.category)
    .bind(&new.description)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// After inserting explicit ids, move PostgreSQL's identity past them. (SQLite's
/// `AUTOINCREMENT` counter follows explicit ids by itself.)
pub async fn resync_ids(
    connection: &mut AnyConnection,
    backend: Backend,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('expenses', 'id'), \
             (SELECT COALESCE(MAX(id), 1) FROM expenses))",
        )
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

pub async fn get<'c, E: Executor<'c, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<Expense>, sqlx::Error> {
    let row = sqlx::query(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(expense).transpose()
}

/// Read an expense and lock it until the transaction ends.
pub async fn get_for_update(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
) -> Result<Option<Expense>, sqlx::Error> {
    let statement = match backend {
        Backend::Postgres => SELECT_BY_ID_FOR_UPDATE,
        // The write transaction (BEGIN IMMEDIATE) already excludes other writers.
        Backend::Sqlite => SELECT_BY_ID,
    };
    let row = sqlx::query(statement)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(expense).transpose()
}

pub async fn update(
    connection: &mut AnyConnection,
    id: i64,
    new: &NewExpense,
) -> Result<Option<Expense>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE expenses SET spent_on = $2, amount_minor = $3, currency = $4, category = $5, \
         description = $6 WHERE id = $1 \
         RETURNING id, spent_on, amount_minor, currency, category, description",
    )
    .bind(id)
    .bind(&new.date)
    .bind(new.amount_minor)
    .bind(new.currency.code())
    .bind(&new.category)
    .bind(&new.description)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(expense).transpose()
}

pub async fn delete(
    connection: &mut AnyConnection,
    id: i64,
) -> Result<Option<Expense>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM expenses WHERE id = $1 \
         RETURNING id, spent_on, amount_minor, currency, category, description",
    )
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(expense).transpose()
}

/// What `list_expenses` filters on, and where a page starts.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub category: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// The last (date, id) of the previous page.
    pub after: Option<(String, i64)>,
}

/// Up to `limit` expenses, newest first (date, then id, both descending).
pub async fn list<'c, E: Executor<'c, Database = Any>>(
    executor: E,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Expense>, sqlx::Error> {
    let (after_date, after_id) = match &filter.after {
        Some((date, id)) => (Some(date.as_str()), Some(*id)),
        None => (None, None),
    };
    let rows = sqlx::query(
        "SELECT id, spent_on, amount_minor, currency, category, description FROM expenses \
         WHERE ($1 IS NULL OR category = $1) \
           AND ($2 IS NULL OR spent_on >= $2) \
           AND ($3 IS NULL OR spent_on <= $3) \
           AND ($4 IS NULL OR spent_on < $4 OR (spent_on = $4 AND id < $5)) \
         ORDER BY spent_on DESC, id DESC \
         LIMIT $6",
    )
    .bind(filter.category.as_deref())
    .bind(filter.start_date.as_deref())
    .bind(filter.end_date.as_deref())
    .bind(after_date)
    .bind(after_id)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(expense).collect()
}

/// Expenses with ids above `after_id`, in id order (for export).
pub async fn page_by_id<'c, E: Executor<'c, Database = Any>>(
    executor: E,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Expense>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, spent_on, amount_minor, currency, category, description FROM expenses \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(expense).collect()
}

/// One group of a summary, straight from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub key: String,
    pub currency: String,
    pub count: i64,
    pub total_minor: i64,
}

/// How to group a summary.
#[derive(Debug, Clone, Copy)]
pub enum Grouping {
    Category,
    Day,
    Month,
}

/// Count and total per group and currency between two days (either may be open).
pub async fn summarise<'c, E: Executor<'c, Database = Any>>(
    executor: E,
    grouping: Grouping,
    start_date: Option<&str>,
    end_date: Option<&str>,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    let statement = match grouping {
        Grouping::Category => {
            "SELECT category AS grouping_key, currency, COUNT(*) AS n, \
             CAST(SUM(amount_minor) AS BIGINT) AS total FROM expenses \
             WHERE ($1 IS NULL OR spent_on >= $1) AND ($2 IS NULL OR spent_on <= $2) \
             GROUP BY category, currency"
        }
        Grouping::Day => {
            "SELECT spent_on AS grouping_key, currency, COUNT(*) AS n, \
             CAST(SUM(amount_minor) AS BIGINT) AS total FROM expenses \
             WHERE ($1 IS NULL OR spent_on >= $1) AND ($2 IS NULL OR spent_on <= $2) \
             GROUP BY spent_on, currency"
        }
        Grouping::Month => {
            "SELECT substr(spent_on, 1, 7) AS grouping_key, currency, COUNT(*) AS n, \
             CAST(SUM(amount_minor) AS BIGINT) AS total FROM expenses \
             WHERE ($1 IS NULL OR spent_on >= $1) AND ($2 IS NULL OR spent_on <= $2) \
             GROUP BY substr(spent_on, 1, 7), currency"
        }
    };
    let rows = sqlx::query(statement)
        .bind(start_date)
        .bind(end_date)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(GroupRow {
                key: row.try_get("grouping_key")?,
                currency: row.try_get("currency")?,
                count: row.try_get("n")?,
                total_minor: row.try_get("total")?,
            })
        })
        .collect()
}

/// Every category with its number of expenses.
pub async fn categories<'c, E: Executor<'c, Database = Any>>(
    executor: E,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT category, COUNT(*) AS n FROM expenses GROUP BY category")
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("category")?, row.try_get("n")?)))
        .collect()
}
