//! What each tool does: check the arguments the schema cannot (amount precision, calendar
//! days, the cursor), run one transaction, and answer with structured content and a line of
//! text for models.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use switchboard_server::{HandlerError, ToolOutput};

use crate::{
    Expenses,
    dates::{self, Span},
    error::failed,
    model::{
        AddExpenseArgs, AmountArg, CurrencyTotal, DEFAULT_LIST_LIMIT, DeleteExpenseArgs,
        DeleteOutput, ExpenseOutput, GroupBy, GroupTotal, ListExpensesArgs, ListOutput, Period,
        Summary, SummaryArgs, UpdateExpenseArgs,
    },
    money::{AmountError, Currency, DEFAULT_CURRENCY},
    queries::{self, Filter, Grouping, NewExpense},
};

/// The answer for an id that does not exist.
pub(crate) fn no_such_expense(id: i64) -> ToolOutput {
    ToolOutput::error(format!(
        "No expense has id {id}. Call list_expenses to see the ids."
    ))
}

fn structured<T: Serialize>(value: &T, text: String) -> Result<ToolOutput, HandlerError> {
    let value = serde_json::to_value(value)
        .map_err(|error| HandlerError::Internal(format!("cannot encode the result: {error}")))?;
    Ok(ToolOutput::structured(value, text))
}

pub(crate) fn currency_arg(code: Option<&str>, pointer: &str) -> Result<Currency, HandlerError> {
    Currency::from_code(code.unwrap_or(DEFAULT_CURRENCY))
        .map_err(|message| HandlerError::invalid(pointer, message))
}

fn amount_arg(amount: &AmountArg, currency: Currency) -> Result<i64, HandlerError> {
    let text = amount.text();
    currency.parse(&text).map_err(|error| {
        let shown = match amount {
            AmountArg::Text(text) => format!("{text:?}"),
            AmountArg::Number(number) => number.to_string(),
        };
        HandlerError::invalid("/amount", format!("{shown} {error}"))
    })
}

fn date_arg(text: &str, pointer: &str) -> Result<String, HandlerError> {
    dates::parse_date(text)
        .map(dates::format_date)
        .map_err(|message| HandlerError::invalid(pointer, message))
}

fn category_arg(text: &str, pointer: &str) -> Result<String, HandlerError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(HandlerError::invalid(pointer, "must not be blank"));
    }
    Ok(trimmed.to_owned())
}

/// The cursor after `(date, id)`: opaque to clients, `date/id` in base64url inside.
pub(crate) fn encode_cursor(date: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{date}/{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, i64), HandlerError> {
    let invalid = || {
        HandlerError::invalid(
            "/cursor",
            "is not a cursor from list_expenses; call list_expenses without a cursor to start again",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (date, id) = text.split_once('/').ok_or_else(invalid)?;
    let date = dates::parse_date(date).map_err(|_| invalid())?;
    let id = id.parse::<i64>().map_err(|_| invalid())?;
    Ok((dates::format_date(date), id))
}

impl Expenses {
    pub(crate) async fn add_expense(
        &self,
        args: AddExpenseArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let currency = currency_arg(args.currency.as_deref(), "/currency")?;
        let new = NewExpense {
            amount_minor: amount_arg(&args.amount, currency)?,
            currency,
            date: match &args.date {
                Some(date) => date_arg(date, "/date")?,
                None => dates::format_date(dates::today()),
            },
            category: category_arg(&args.category, "/category")?,
            description: args.description.trim().to_owned(),
        };
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(failed("starting to add an expense"))?;
        let expense = queries::insert(&mut tx, &new)
            .await
            .map_err(failed("adding an expense"))?;
        tx.commit().await.map_err(failed("adding an expense"))?;
        let text = format!(
            "Added expense {}: {} {} for {} ({}) on {}.",
            expense.id,
            expense.currency,
            expense.amount,
            expense.category,
            expense.description,
            expense.date
        );
        structured(&ExpenseOutput { expense }, text)
    }

    pub(crate) async fn list_expenses(
        &self,
        args: ListExpensesArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let filter = Filter {
            category: args
                .category
                .as_deref()
                .map(|c| category_arg(c, "/category"))
                .transpose()?,
            start_date: args
                .start_date
                .as_deref()
                .map(|d| date_arg(d, "/start_date"))
                .transpose()?,
            end_date: args
                .end_date
                .as_deref()
                .map(|d| date_arg(d, "/end_date"))
                .transpose()?,
            after: args.cursor.as_deref().map(decode_cursor).transpose()?,
        };
        let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        // One more than asked tells whether there is a next page.
        let mut expenses = queries::list(self.store.pool(), &filter, i64::from(limit) + 1)
            .await
            .map_err(failed("listing expenses"))?;
        let next_cursor = if expenses.len() > limit as usize {
            expenses.truncate(limit as usize);
            expenses.last().map(|e| encode_cursor(&e.date, e.id))
        } else {
            None
        };
        let mut text = if expenses.is_empty() {
            "No expenses match.".to_owned()
        } else {
            let mut text = format!(
                "{} expense{} (newest first):",
                expenses.len(),
                if expenses.len() == 1 { "" } else { "s" }
            );
            for expense in &expenses {
                text.push('\n');
                text.push_str(&expense.line());
            }
            text
        };
        if let Some(cursor) = &next_cursor {
            text.push_str(&format!(
                "\nThere are more: call list_expenses with cursor {cursor:?} for the next page."
            ));
        }
        structured(
            &ListOutput {
                expenses,
                next_cursor,
            },
            text,
        )
    }

    pub(crate) async fn get_summary(&self, args: SummaryArgs) -> Result<ToolOutput, HandlerError> {
        let ranged = args.start_date.is_some() || args.end_date.is_some();
        let (start, end) = match (args.period, ranged) {
            (Some(_), true) => {
                return Err(HandlerError::invalid(
                    "/period",
                    "give either period or start_date/end_date, not both",
                ));
            }
            (Some(period), false) => {
                let span = match period {
                    Period::Week => Span::Week,
                    Period::Month => Span::Month,
                    Period::Year => Span::Year,
                };
                let (start, end) = dates::span_around(span, dates::today());
                (
                    Some(dates::format_date(start)),
                    Some(dates::format_date(end)),
                )
            }
            (None, true) => (
                args.start_date
                    .as_deref()
                    .map(|d| date_arg(d, "/start_date"))
                    .transpose()?,
                args.end_date
                    .as_deref()
                    .map(|d| date_arg(d, "/end_date"))
                    .transpose()?,
            ),
            (None, false) => {
                let (start, end) = dates::span_around(Span::Month, dates::today());
                (
                    Some(dates::format_date(start)),
                    Some(dates::format_date(end)),
                )
            }
        };
        if let (Some(start), Some(end)) = (&start, &end)
            && end < start
        {
            return Err(HandlerError::invalid(
                "/end_date",
                format!("{end} is before start_date {start}"),
            ));
        }
        let summary = self
            .summary(args.group_by.unwrap_or_default(), start, end)
            .await?;
        let text = summary_text(&summary);
        structured(&summary, text)
    }

    /// The summary between two days (either may be open), grouped and per currency.
    pub(crate) async fn summary(
        &self,
        group_by: GroupBy,
        start_date: Option<String>,
        end_date: Option<String>,
    ) -> Result<Summary, HandlerError> {
        let grouping = match group_by {
            GroupBy::Category => Grouping::Category,
            GroupBy::Day => Grouping::Day,
            GroupBy::Month => Grouping::Month,
        };
        let rows = queries::summarise(
            self.store.pool(),
            grouping,
            start_date.as_deref(),
            end_date.as_deref(),
        )
        .await
        .map_err(failed("summarising expenses"))?;
        let mut totals: Vec<CurrencyTotal> = Vec::new();
        let mut groups: Vec<GroupTotal> = Vec::with_capacity(rows.len());
        let mut count = 0;
        for row in rows {
            let currency = Currency::of_stored(&row.currency);
            count += row.count;
            match totals.iter_mut().find(|t| t.currency == row.currency) {
                Some(total) => {
                    total.count += row.count;
                    total.total_minor = total.total_minor.saturating_add(row.total_minor);
                    total.total = currency.format(total.total_minor);
                }
                None => totals.push(CurrencyTotal {
                    currency: row.currency.clone(),
                    total: currency.format(row.total_minor),
                    total_minor: row.total_minor,
                    count: row.count,
                }),
            }
            groups.push(GroupTotal {
                key: row.key,
                total: currency.format(row.total_minor),
                currency: row.currency,
                total_minor: row.total_minor,
                count: row.count,
            });
        }
        // Both back ends give the same order: sorted here, byte by byte.
        totals.sort_by(|a, b| a.currency.cmp(&b.currency));
        match group_by {
            GroupBy::Category => groups.sort_by(|a, b| {
                a.currency
                    .cmp(&b.currency)
                    .then(b.total_minor.cmp(&a.total_minor))
                    .then(a.key.cmp(&b.key))
            }),
            GroupBy::Day | GroupBy::Month => {
                groups.sort_by(|a, b| a.key.cmp(&b.key).then(a.currency.cmp(&b.currency)))
            }
        }
        Ok(Summary {
            start_date,
            end_date,
            group_by,
            count,
            totals,
            groups,
        })
    }

    pub(crate) async fn update_expense(
        &self,
        args: UpdateExpenseArgs,
    ) -> Result<ToolOutput, HandlerError> {
        if args.amount.is_none()
            && args.category.is_none()
            && args.description.is_none()
            && args.date.is_none()
            && args.currency.is_none()
        {
            return Err(HandlerError::invalid(
                "",
                "give at least one field to change: amount, category, description, date or currency",
            ));
        }
        let new_currency = args
            .currency
            .as_deref()
            .map(|c| currency_arg(Some(c), "/currency"))
            .transpose()?;
        let new_date = args
            .date
            .as_deref()
            .map(|d| date_arg(d, "/date"))
            .transpose()?;
        let new_category = args
            .category
            .as_deref()
            .map(|c| category_arg(c, "/category"))
            .transpose()?;
        if let (Some(amount), Some(currency)) = (&args.amount, new_currency) {
            amount_arg(amount, currency)?;
        }

        let backend = self.store.backend();
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(failed("starting to update an expense"))?;
        let Some(current) = queries::get_for_update(&mut tx, backend, args.id)
            .await
            .map_err(failed("reading an expense to update"))?
        else {
            return Ok(no_such_expense(args.id));
        };
        let current_currency = Currency::of_stored(&current.currency);
        let currency = new_currency.unwrap_or(current_currency);
        let amount_minor = match &args.amount {
            Some(amount) => amount_arg(amount, currency)?,
            None if currency == current_currency => current.amount_minor,
            None => match currency.parse(&current.amount) {
                Ok(minor) => minor,
                Err(AmountError::TooPrecise { .. }) => {
                    return Ok(ToolOutput::error(format!(
                        "Expense {} is {} {}, which cannot be written in {currency} ({currency} has {} decimal places). Give the amount in {currency} too.",
                        current.id,
                        current.currency,
                        current.amount,
                        currency.exponent()
                    )));
                }
                Err(error) => {
                    return Ok(ToolOutput::error(format!(
                        "Expense {}'s amount {} {error} in {currency}. Give the amount in {currency} too.",
                        current.id, current.amount
                    )));
                }
            },
        };
        let new = NewExpense {
            date: new_date.unwrap_or(current.date),
            amount_minor,
            currency,
            category: new_category.unwrap_or(current.category),
            description: args
                .description
                .map(|d| d.trim().to_owned())
                .unwrap_or(current.description),
        };
        let Some(expense) = queries::update(&mut tx, args.id, &new)
            .await
            .map_err(failed("updating an expense"))?
        else {
            return Ok(no_such_expense(args.id));
        };
        tx.commit().await.map_err(failed("updating an expense"))?;
        let text = format!("Updated expense {}: {}", expense.id, expense.line());
        structured(&ExpenseOutput { expense }, text)
    }

    pub(crate) async fn delete_expense(
        &self,
        args: DeleteExpenseArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(failed("starting to delete an expense"))?;
        let Some(deleted) = queries::delete(&mut tx, args.id)
            .await
            .map_err(failed("deleting an expense"))?
        else {
            return Ok(no_such_expense(args.id));
        };
        tx.commit().await.map_err(failed("deleting an expense"))?;
        let text = format!("Deleted expense {}: {}", deleted.id, deleted.line());
        structured(&DeleteOutput { deleted }, text)
    }
}

/// The summary as a few lines for a model.
pub(crate) fn summary_text(summary: &Summary) -> String {
    let range = match (&summary.start_date, &summary.end_date) {
        (Some(start), Some(end)) => format!("from {start} to {end}"),
        (Some(start), None) => format!("since {start}"),
        (None, Some(end)) => format!("up to {end}"),
        (None, None) => "of all time".to_owned(),
    };
    if summary.count == 0 {
        return format!("No expenses {range}.");
    }
    let by = match summary.group_by {
        GroupBy::Category => "category",
        GroupBy::Day => "day",
        GroupBy::Month => "month",
    };
    let totals: Vec<String> = summary
        .totals
        .iter()
        .map(|t| {
            format!(
                "{} {} ({} expense{})",
                t.currency,
                t.total,
                t.count,
                plural(t.count)
            )
        })
        .collect();
    let mut text = format!(
        "{} expense{} {range}. Total{}: {}.",
        summary.count,
        plural(summary.count),
        if summary.totals.len() > 1 {
            "s per currency (amounts in different currencies are not added together)"
        } else {
            ""
        },
        totals.join("; ")
    );
    text.push_str(&format!("\nBy {by}:"));
    for group in &summary.groups {
        text.push_str(&format!(
            "\n- {}: {} {} ({})",
            group.key, group.currency, group.total, group.count
        ));
    }
    text
}

fn plural(count: i64) -> &'static str {
    if count == 1 { "" } else { "s" }
}
