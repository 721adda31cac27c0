//! The tools' arguments and results, as typed structs. Their `schemars` schemas are the tools'
//! `inputSchema` and `outputSchema`; the server kit checks arguments against them.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::{dates::DATE_PATTERN, money::MAX_AMOUNT_CHARS};

/// The pattern of an amount given as text.
pub const AMOUNT_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?$";
/// The pattern of a currency code (any case; stored upper case).
pub const CURRENCY_PATTERN: &str = "^[A-Za-z]{3}$";
/// Longest category name, in characters.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most expenses one `list_expenses` page returns, and how many it returns by default.
pub const MAX_LIST_LIMIT: u32 = 1000;
pub const DEFAULT_LIST_LIMIT: u32 = 50;
/// Longest cursor accepted.
pub const MAX_CURSOR_CHARS: usize = 200;

/// An amount: decimal text ("12.50") or a JSON number (12.5). A number is read from its
/// shortest decimal form, so 12.345 stays 12.345 and is refused for USD instead of being
/// rounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AmountArg {
    Text(String),
    Number(serde_json::Number),
}

impl AmountArg {
    /// The decimal text of the amount.
    pub fn text(&self) -> String {
        match self {
            AmountArg::Text(text) => text.clone(),
            AmountArg::Number(number) => number.to_string(),
        }
    }
}

impl JsonSchema for AmountArg {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The amount spent, greater than 0: decimal text like \"12.50\" or a number like 12.5, with no more decimals than the currency has (USD 2, JPY 0, BHD 3).",
            "type": ["string", "number"],
            "pattern": AMOUNT_PATTERN,
            "maxLength": MAX_AMOUNT_CHARS,
            "exclusiveMinimum": 0
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddExpenseArgs {
    pub amount: AmountArg,
    /// What kind of spending, e.g. "food", "rent" or "travel".
    #[schemars(length(min = 1, max = 64))]
    pub category: String,
    /// What the money was spent on.
    #[schemars(length(max = 500))]
    pub description: String,
    /// The day of the expense, YYYY-MM-DD. Today (UTC) when omitted.
    #[serde(default)]
    #[schemars(pattern(DATE_PATTERN))]
    pub date: Option<String>,
    /// ISO 4217 currency code, e.g. "USD", "EUR", "JPY". USD when omitted.
    #[serde(default)]
    #[schemars(pattern(CURRENCY_PATTERN))]
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListExpensesArgs {
    /// Only this category (exact match).
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub category: Option<String>,
    /// Only expenses on or after this day, YYYY-MM-DD.
    #[serde(default)]
    #[schemars(pattern(DATE_PATTERN))]
    pub start_date: Option<String>,
    /// Only expenses on or before this day, YYYY-MM-DD.
    #[serde(default)]
    #[schemars(pattern(DATE_PATTERN))]
    pub end_date: Option<String>,
    /// How many expenses to return, 1 to 1000 (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, to get the page after it.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub cursor: Option<String>,
}

/// The calendar week (Monday to Sunday), month or year that contains today (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum Period {
    Week,
    Month,
    Year,
}

/// How a summary is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum GroupBy {
    #[default]
    Category,
    Day,
    Month,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryArgs {
    /// This week (Monday to Sunday), month or year, in UTC. Give this or start_date/end_date; with neither, this month.
    #[serde(default)]
    pub period: Option<Period>,
    /// First day to include, YYYY-MM-DD.
    #[serde(default)]
    #[schemars(pattern(DATE_PATTERN))]
    pub start_date: Option<String>,
    /// Last day to include, YYYY-MM-DD.
    #[serde(default)]
    #[schemars(pattern(DATE_PATTERN))]
    pub end_date: Option<String>,
    /// Break the totals down by category (default), day or month.
    #[serde(default)]
    pub group_by: Option<GroupBy>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateExpenseArgs {
    /// The expense to change (from add_expense or list_expenses).
    #[schemars(range(min = 1))]
    pub id: i64,
    /// A new amount, in the expense's currency (or the new one, if currency is also given).
    #[serde(default)]
    pub amount: Option<AmountArg>,
    /// A new category.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub category: Option<String>,
    /// A new description.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub description: Option<String>,
    /// A new day, YYYY-MM-DD.
    #[serde(default)]
    #[schemars(pattern(DATE_PATTERN))]
    pub date: Option<String>,
    /// A new ISO 4217 currency code. Without a new amount, the amount is kept as is (if the new currency has enough decimals).
    #[serde(default)]
    #[schemars(pattern(CURRENCY_PATTERN))]
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteExpenseArgs {
    /// The expense to delete.
    #[schemars(range(min = 1))]
    pub id: i64,
}

/// One expense.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Expense {
    pub id: i64,
    /// YYYY-MM-DD.
    pub date: String,
    /// Decimal text with the currency's decimals, e.g. "12.50".
    pub amount: String,
    /// The amount in the currency's minor unit (cents for USD), exact.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    pub category: String,
    pub description: String,
}

impl Expense {
    /// One line for models: `#42 2026-07-15 USD 12.50 food: lunch`.
    pub fn line(&self) -> String {
        format!(
            "#{} {} {} {} {}: {}",
            self.id, self.date, self.currency, self.amount, self.category, self.description
        )
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExpenseOutput {
    pub expense: Expense,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOutput {
    pub deleted: Expense,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOutput {
    /// Newest first (by date, then id).
    pub expenses: Vec<Expense>,
    /// Pass as `cursor` to get the next page; null when this is the last page.
    pub next_cursor: Option<String>,
}

/// Totals for one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    /// Decimal text, e.g. "12.50".
    pub total: String,
    pub total_minor: i64,
    pub count: i64,
}

/// Totals for one group (a category, day or month) in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupTotal {
    /// The category, day (YYYY-MM-DD) or month (YYYY-MM).
    pub key: String,
    pub currency: String,
    pub total: String,
    pub total_minor: i64,
    pub count: i64,
}

/// Spending in a date range, totalled per currency: amounts in different currencies are never added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// First day included; null when the range is open at the start.
    pub start_date: Option<String>,
    /// Last day included; null when the range is open at the end.
    pub end_date: Option<String>,
    pub group_by: GroupBy,
    /// Number of expenses in the range, over all currencies.
    pub count: i64,
    /// One entry per currency, by currency code.
    pub totals: Vec<CurrencyTotal>,
    pub groups: Vec<GroupTotal>,
}
