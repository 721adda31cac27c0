//! Import and export, as JSON or CSV.
//!
//! JSON is the shape of the common tutorial expense server that keeps its expenses in a JSON
//! file: an array of `{"id", "amount", "category", "description", "date"}` objects, `amount` a
//! number in major units. Ours adds `"currency"` (USD when absent on import). Amounts are read
//! from their exact JSON text and written as exact decimal numbers (`12.50`), never through a
//! float. CSV has the header `id,date,amount,currency,category,description`.
//!
//! An import is one transaction: every row goes in, or none does, and the first bad row is
//! reported with its number and field. Ids in the file are kept (an id already in the database
//! is an error); rows without one get new ids.

use std::{collections::HashMap, path::Path};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    Expenses, dates,
    error::ExpensesError,
    model::{MAX_CATEGORY_CHARS, MAX_DESCRIPTION_CHARS},
    money::{Currency, DEFAULT_CURRENCY},
    queries::{self, NewExpense},
};

/// Most rows one import may have.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// Most expenses one export may write.
pub const MAX_EXPORT_ROWS: usize = 1_000_000;
/// The CSV header, in order.
pub const CSV_HEADER: [&str; 6] = [
    "id",
    "date",
    "amount",
    "currency",
    "category",
    "description",
];

/// A file format for import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// The format a file name's extension names (`.json`, `.csv`, any case).
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Csv => "CSV",
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Rows imported (all of them: an import is all or nothing).
    pub imported: usize,
    /// Rows that kept the id they had in the file.
    pub kept_ids: usize,
    /// Rows that had no id and were given one.
    pub new_ids: usize,
}

/// One checked row of an import.
#[derive(Debug)]
struct ImportRow {
    row: usize,
    line: Option<u64>,
    id: Option<i64>,
    expense: NewExpense,
}

/// A row's fields as text, however the format spelled them.
#[derive(Debug, Default)]
struct Fields {
    id: Option<String>,
    date: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    category: Option<String>,
    description: Option<String>,
}

/// Where a row is, for its errors.
#[derive(Debug, Clone, Copy)]
struct RowAt {
    row: usize,
    line: Option<u64>,
}

impl RowAt {
    fn error(self, field: &str, message: impl Into<String>) -> ExpensesError {
        ExpensesError::InvalidRow {
            row: self.row,
            line: self.line,
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

fn check_row(at: RowAt, fields: Fields) -> Result<ImportRow, ExpensesError> {
    let id = match fields
        .id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    at.error("id", format!("{text:?} is not a positive whole number"))
                })?,
        ),
    };
    let date_text = fields
        .date
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| at.error("date", "is missing; give the day as YYYY-MM-DD"))?;
    // A timestamp ("2026-07-15T12:30:00Z") keeps its day.
    let day_part = match date_text.as_bytes().get(10) {
        Some(b'T' | b' ') => &date_text[..10],
        _ => date_text,
    };
    let date = dates::parse_date(day_part).map_err(|message| at.error("date", message))?;
    let currency = Currency::from_code(
        fields
            .currency
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_CURRENCY),
    )
    .map_err(|message| at.error("currency", message))?;
    let amount_text = fields
        .amount
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| at.error("amount", "is missing"))?;
    let amount_minor = currency
        .parse(amount_text)
        .map_err(|error| at.error("amount", format!("{amount_text} {error}")))?;
    let category = fields
        .category
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if category.is_empty() {
        return Err(at.error("category", "is missing or blank"));
    }
    if category.chars().count() > MAX_CATEGORY_CHARS {
        return Err(at.error(
            "category",
            format!("is longer than {MAX_CATEGORY_CHARS} characters"),
        ));
    }
    let description = fields
        .description
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(at.error(
            "description",
            format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(ImportRow {
        row: at.row,
        line: at.line,
        id,
        expense: NewExpense {
            date: dates::format_date(date),
            amount_minor,
            currency,
            category: category.to_owned(),
            description: description.to_owned(),
        },
    })
}

/// The text of a JSON field: strings unquoted, numbers as written, null as absent.
fn json_field(
    at: RowAt,
    name: &str,
    raw: &RawValue,
    numbers: bool,
) -> Result<Option<String>, ExpensesError> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text)
            .map(Some)
            .map_err(|error| at.error(name, error.to_string()));
    }
    if numbers && text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Ok(Some(text.to_owned()));
    }
    Err(at.error(
        name,
        format!(
            "must be {}, not {text}",
            if numbers {
                "a number or a string"
            } else {
                "a string"
            }
        ),
    ))
}

fn parse_json(text: &str) -> Result<Vec<ImportRow>, ExpensesError> {
    #[derive(Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        expenses: Vec<&'a RawValue>,
    }
    let invalid = |message: String| ExpensesError::InvalidInput {
        format: Format::Json.name(),
        message,
    };
    let text = text.trim_start_matches('\u{feff}');
    let records: Vec<&RawValue> = match text.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?,
        Some(b'{') => {
            serde_json::from_str::<Wrapped<'_>>(text)
                .map_err(|e| invalid(e.to_string()))?
                .expenses
        }
        _ => {
            return Err(invalid(
                "expected a JSON array of expenses, like [{\"amount\": 12.5, \"category\": \"food\", \"description\": \"lunch\", \"date\": \"2026-07-15\"}]".to_owned(),
            ));
        }
    };
    if records.len() > MAX_IMPORT_ROWS {
        return Err(invalid(format!("it has more than {MAX_IMPORT_ROWS} rows")));
    }
    records
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let at = RowAt {
                row: index + 1,
                line: None,
            };
            let object: HashMap<String, &RawValue> =
                serde_json::from_str(raw.get()).map_err(|_| ExpensesError::InvalidRow {
                    row: at.row,
                    line: None,
                    field: None,
                    message: format!("is not a JSON object: {}", raw.get()),
                })?;
            let field = |name: &str, numbers: bool| match object.get(name) {
                Some(raw) => json_field(at, name, raw, numbers),
                None => Ok(None),
            };
            let fields = Fields {
                id: field("id", true)?,
                date: field("date", false)?,
                amount: field("amount", true)?,
                currency: field("currency", false)?,
                category: field("category", false)?,
                description: field("description", false)?,
            };
            check_row(at, fields)
        })
        .collect()
}

fn parse_csv(text: &str) -> Result<Vec<ImportRow>, ExpensesError> {
    let invalid = |message: String| ExpensesError::InvalidInput {
        format: Format::Csv.name(),
        message,
    };
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| invalid(e.to_string()))?
        .clone();
    let mut columns: HashMap<&'static str, usize> = HashMap::new();
    for (index, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        let Some(known) = CSV_HEADER.iter().find(|k| **k == name) else {
            return Err(invalid(format!(
                "unknown column {name:?}; the header is {}",
                CSV_HEADER.join(",")
            )));
        };
        if columns.insert(known, index).is_some() {
            return Err(invalid(format!("the column {name:?} appears twice")));
        }
    }
    for required in ["date", "amount", "category"] {
        if !columns.contains_key(required) {
            return Err(invalid(format!(
                "the header has no {required:?} column; it should be {}",
                CSV_HEADER.join(",")
            )));
        }
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        if index >= MAX_IMPORT_ROWS {
            return Err(invalid(format!("it has more than {MAX_IMPORT_ROWS} rows")));
        }
        let row = index + 1;
        let record = record.map_err(|error| ExpensesError::InvalidRow {
            row,
            line: error.position().map(|p| p.line()),
            field: None,
            message: error.to_string(),
        })?;
        let at = RowAt {
            row,
            line: record.position().map(|p| p.line()),
        };
        let cell = |name: &str| {
            columns
                .get(name)
                .and_then(|index| record.get(*index))
                .map(str::to_owned)
        };
        let fields = Fields {
            id: cell("id"),
            date: cell("date"),
            amount: cell("amount"),
            currency: cell("currency"),
            category: cell("category"),
            description: cell("description"),
        };
        rows.push(check_row(at, fields)?);
    }
    Ok(rows)
}

/// One expense as the JSON export writes it.
#[derive(Serialize)]
struct ExportRow<'a> {
    id: i64,
    amount: Box<RawValue>,
    category: &'a str,
    description: &'a str,
    date: &'a str,
    currency: &'a str,
}

impl Expenses {
    /// Import `text` in `format`, all or nothing.
    pub async fn import(&self, format: Format, text: &str) -> Result<ImportReport, ExpensesError> {
        let rows = match format {
            Format::Json => parse_json(text)?,
            Format::Csv => parse_csv(text)?,
        };
        let mut first_row_of: HashMap<i64, usize> = HashMap::new();
        for row in &rows {
            if let Some(id) = row.id
                && let Some(first) = first_row_of.insert(id, row.row)
            {
                return Err(ExpensesError::InvalidRow {
                    row: row.row,
                    line: row.line,
                    field: Some("id".to_owned()),
                    message: format!("id {id} is already used by row {first}"),
                });
            }
        }
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(ExpensesError::database("starting the import"))?;
        let mut report = ImportReport::default();
        for row in rows.iter().filter(|r| r.id.is_some()) {
            let id = row.id.unwrap_or_default();
            if let Err(error) = queries::insert_with_id(&mut tx, id, &row.expense).await {
                let taken = error
                    .as_database_error()
                    .is_some_and(|e| e.is_unique_violation());
                return Err(if taken {
                    ExpensesError::InvalidRow {
                        row: row.row,
                        line: row.line,
                        field: Some("id".to_owned()),
                        message: format!(
                            "expense {id} already exists in the database; remove the ids from the file to import its rows as new expenses"
                        ),
                    }
                } else {
                    ExpensesError::database("importing an expense")(error)
                });
            }
            report.kept_ids += 1;
        }
        if report.kept_ids > 0 {
            queries::resync_ids(&mut tx, self.store.backend())
                .await
                .map_err(ExpensesError::database(
                    "moving the id sequence past imported ids",
                ))?;
        }
        for row in rows.iter().filter(|r| r.id.is_none()) {
            queries::insert(&mut tx, &row.expense)
                .await
                .map_err(ExpensesError::database("importing an expense"))?;
            report.new_ids += 1;
        }
        tx.commit()
            .await
            .map_err(ExpensesError::database("committing the import"))?;
        report.imported = report.kept_ids + report.new_ids;
        Ok(report)
    }

    /// Every expense, in id order, as `format` text.
    pub async fn export(&self, format: Format) -> Result<String, ExpensesError> {
        // One statement, so the export is one consistent snapshot.
        let expenses = queries::page_by_id(self.store.pool(), 0, MAX_EXPORT_ROWS as i64 + 1)
            .await
            .map_err(ExpensesError::database("exporting expenses"))?;
        if expenses.len() > MAX_EXPORT_ROWS {
            return Err(ExpensesError::TooManyToExport {
                limit: MAX_EXPORT_ROWS,
            });
        }
        match format {
            Format::Json => {
                let rows = expenses
                    .iter()
                    .map(|e| {
                        Ok(ExportRow {
                            id: e.id,
                            amount: RawValue::from_string(e.amount.clone())?,
                            category: &e.category,
                            description: &e.description,
                            date: &e.date,
                            currency: &e.currency,
                        })
                    })
                    .collect::<Result<Vec<_>, serde_json::Error>>()
                    .map_err(|error| ExpensesError::Export {
                        format: Format::Json.name(),
                        message: error.to_string(),
                    })?;
                let mut text =
                    serde_json::to_string_pretty(&rows).map_err(|error| ExpensesError::Export {
                        format: Format::Json.name(),
                        message: error.to_string(),
                    })?;
                text.push('\n');
                Ok(text)
            }
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                let csv_error = |error: csv::Error| ExpensesError::Export {
                    format: Format::Csv.name(),
                    message: error.to_string(),
                };
                writer.write_record(CSV_HEADER).map_err(csv_error)?;
                for e in &expenses {
                    writer
                        .write_record([
                            e.id.to_string().as_str(),
                            &e.date,
                            &e.amount,
                            &e.currency,
                            &e.category,
                            &e.description,
                        ])
                        .map_err(csv_error)?;
                }
                let bytes = writer
                    .into_inner()
                    .map_err(|error| csv_error(error.into_error().into()))?;
                String::from_utf8(bytes).map_err(|error| ExpensesError::Export {
                    format: Format::Csv.name(),
                    message: error.to_string(),
                })
            }
        }
    }
}
