//! Resources (categories, one expense, one month's summary) and the monthly review prompt.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use switchboard_server::{
    HandlerError, Prompt, PromptOutput, Resource, ResourceContents, ResourceTemplate,
};

use crate::{Expenses, dates, error::failed, model::GroupBy, queries, tools::summary_text};

const JSON: &str = "application/json";
pub(crate) const CATEGORIES_URI: &str = "expenses://categories";
pub(crate) const EXPENSE_TEMPLATE: &str = "expenses://expense/{id}";
pub(crate) const SUMMARY_TEMPLATE: &str = "expenses://summary/{month}";

/// A category and how many expenses it has.
#[derive(Debug, Serialize)]
struct CategoryCount {
    category: String,
    count: i64,
}

fn json_contents<T: Serialize>(
    uri: String,
    value: &T,
) -> Result<Vec<ResourceContents>, HandlerError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| HandlerError::Internal(format!("cannot encode {uri}: {error}")))?;
    Ok(vec![ResourceContents::text(uri, JSON, text)])
}

fn not_found(uri: &str, message: String) -> HandlerError {
    HandlerError::NotFound {
        message,
        data: json!({ "uri": uri }),
    }
}

impl Expenses {
    async fn read_categories(&self) -> Result<Vec<ResourceContents>, HandlerError> {
        let mut categories = queries::categories(self.store.pool())
            .await
            .map_err(failed("reading the categories"))?;
        categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let list: Vec<CategoryCount> = categories
            .into_iter()
            .map(|(category, count)| CategoryCount { category, count })
            .collect();
        json_contents(CATEGORIES_URI.to_owned(), &list)
    }

    async fn read_expense(
        &self,
        uri: String,
        variables: HashMap<String, String>,
    ) -> Result<Vec<ResourceContents>, HandlerError> {
        let Some(id) = variables
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
            .filter(|id| *id > 0)
        else {
            return Err(not_found(
                &uri,
                format!(
                    "{uri} names no expense: ids are positive whole numbers (see list_expenses)"
                ),
            ));
        };
        match queries::get(self.store.pool(), id)
            .await
            .map_err(failed("reading an expense"))?
        {
            Some(expense) => json_contents(uri, &expense),
            None => Err(not_found(&uri, format!("no expense has id {id}"))),
        }
    }

    async fn read_summary(
        &self,
        uri: String,
        variables: HashMap<String, String>,
    ) -> Result<Vec<ResourceContents>, HandlerError> {
        let month = variables
            .get("month")
            .map(String::as_str)
            .unwrap_or_default();
        let (first, last) = dates::parse_month(month)
            .map_err(|message| not_found(&uri, format!("{uri} names no month: {message}")))?;
        let summary = self
            .summary(
                GroupBy::Category,
                Some(dates::format_date(first)),
                Some(dates::format_date(last)),
            )
            .await?;
        json_contents(uri, &summary)
    }

    async fn monthly_review(
        &self,
        arguments: HashMap<String, String>,
    ) -> Result<PromptOutput, HandlerError> {
        let month = arguments
            .get("month")
            .map(String::as_str)
            .unwrap_or_default();
        let (first, last) = dates::parse_month(month.trim())
            .map_err(|message| HandlerError::invalid("/month", message))?;
        let summary = self
            .summary(
                GroupBy::Category,
                Some(dates::format_date(first)),
                Some(dates::format_date(last)),
            )
            .await?;
        let month = month.trim();
        let mut output = PromptOutput::user_text(format!(
            "Please review my spending for {month}. Here is that month's summary from the expense tracker:\n\n{}\n\nPoint out the biggest categories, anything unusual, and where I could spend less. Amounts in different currencies are separate totals; do not add them together. Use list_expenses with start_date {} and end_date {} if you need the individual expenses.",
            summary_text(&summary),
            dates::format_date(first),
            dates::format_date(last),
        ));
        output.description = Some(format!("Review of the expenses of {month}"));
        Ok(output)
    }
}

pub(crate) fn categories(expenses: &Expenses) -> Resource {
    let expenses = expenses.clone();
    Resource::new(CATEGORIES_URI, "categories", JSON, move |_| {
        let expenses = expenses.clone();
        async move { expenses.read_categories().await }
    })
    .description("Every category in use, with its number of expenses, most used first.")
}

pub(crate) fn expense(expenses: &Expenses) -> ResourceTemplate {
    let expenses = expenses.clone();
    ResourceTemplate::new(
        EXPENSE_TEMPLATE,
        "expense",
        JSON,
        move |uri, variables, _| {
            let expenses = expenses.clone();
            async move { expenses.read_expense(uri, variables).await }
        },
    )
    .description("One expense by id, as JSON.")
}

pub(crate) fn summary(expenses: &Expenses) -> ResourceTemplate {
    let expenses = expenses.clone();
    ResourceTemplate::new(SUMMARY_TEMPLATE, "month summary", JSON, move |uri, variables, _| {
        let expenses = expenses.clone();
        async move { expenses.read_summary(uri, variables).await }
    })
    .description(
        "The summary of one month (month is YYYY-MM, e.g. expenses://summary/2026-07): totals per currency and per category.",
    )
}

pub(crate) fn monthly_review(expenses: &Expenses) -> Prompt {
    let expenses = expenses.clone();
    Prompt::builder(
        "monthly_review",
        "Ask the model to review one month of spending, with that month's summary included.",
    )
    .argument(
        "month",
        "The month to review, YYYY-MM (e.g. 2026-07).",
        true,
    )
    .handler(move |arguments, _| {
        let expenses = expenses.clone();
        async move { expenses.monthly_review(arguments).await }
    })
}
