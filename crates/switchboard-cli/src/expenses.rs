//! `switchboard expenses import|export`.

use std::{path::Path, process::ExitCode};

use switchboard_expenses::{Expenses, ExpensesError, Format};
use switchboard_store::StoreError;
use tokio::io::AsyncWriteExt;

use crate::{
    cli::{ExpensesCommand, TransferFormat},
    run::Failure,
};

/// Largest file `expenses import` reads.
const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Map an expense-store failure to an exit code: a wrong --db or a bad input file is a usage
/// error; a database that cannot be reached is a connection error.
fn failure(error: ExpensesError) -> Failure {
    let message = error.to_string();
    match error {
        ExpensesError::Store(
            StoreError::InvalidLocation { .. }
            | StoreError::NewerDatabase { .. }
            | StoreError::ChangedMigration { .. },
        )
        | ExpensesError::InvalidRow { .. }
        | ExpensesError::InvalidInput { .. } => Failure::usage(message),
        ExpensesError::Store(_) => Failure::connection(message),
        _ => Failure::internal(message),
    }
}

/// Open (creating and migrating) the expense database: `db`, else the default file (the
/// same as `serve expenses` opens).
async fn open(db: Option<&str>) -> Result<Expenses, Failure> {
    Ok(switchboard_cli::serve::open_expenses(db).await?)
}

fn format_of(format: TransferFormat) -> Format {
    match format {
        TransferFormat::Json => Format::Json,
        TransferFormat::Csv => Format::Csv,
    }
}

pub async fn run(command: ExpensesCommand, json: bool) -> Result<ExitCode, Failure> {
    match command {
        ExpensesCommand::Import { file, format, db } => {
            let format = match format {
                Some(format) => format_of(format),
                None => Format::from_path(&file).ok_or_else(|| {
                    Failure::usage(format!(
                        "cannot tell the format of {} from its name; give --format json or --format csv",
                        file.display()
                    ))
                })?,
            };
            let text = read_import(&file).await?;
            let expenses = open(db.db.as_deref()).await?;
            let outcome = expenses.import(format, &text).await;
            let location = expenses.store().location().to_owned();
            expenses.close().await;
            let report = outcome.map_err(|error| {
                let failure = failure(error);
                Failure {
                    message: format!(
                        "{}: {}; nothing was imported",
                        file.display(),
                        failure.message
                    ),
                    code: failure.code,
                }
            })?;
            let text = if json {
                serde_json::json!({
                    "imported": report.imported,
                    "keptIds": report.kept_ids,
                    "newIds": report.new_ids,
                    "database": location,
                })
                .to_string()
            } else {
                format!(
                    "Imported {} expense{} into {location} ({} kept the id in the file, {} got a new id).",
                    report.imported,
                    if report.imported == 1 { "" } else { "s" },
                    report.kept_ids,
                    report.new_ids
                )
            };
            write_stdout(format!("{text}\n").as_bytes()).await?;
            Ok(ExitCode::SUCCESS)
        }
        ExpensesCommand::Export { format, output, db } => {
            let expenses = open(db.db.as_deref()).await?;
            let exported = expenses.export(format_of(format)).await;
            expenses.close().await;
            let text = exported.map_err(failure)?;
            match output {
                Some(path) => tokio::fs::write(&path, text).await.map_err(|error| {
                    Failure::usage(format!("cannot write {}: {error}", path.display()))
                })?,
                None => write_stdout(text.as_bytes()).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn read_import(file: &Path) -> Result<String, Failure> {
    let cannot =
        |error: std::io::Error| Failure::usage(format!("cannot read {}: {error}", file.display()));
    let size = tokio::fs::metadata(file).await.map_err(cannot)?.len();
    if size > MAX_IMPORT_BYTES {
        return Err(Failure::usage(format!(
            "{} is larger than {MAX_IMPORT_BYTES} bytes; split it into smaller imports",
            file.display()
        )));
    }
    let bytes = tokio::fs::read(file).await.map_err(cannot)?;
    String::from_utf8(bytes)
        .map_err(|_| Failure::usage(format!("{} is not UTF-8 text", file.display())))
}

async fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = tokio::io::stdout();
    stdout.write_all(bytes).await?;
    stdout.flush().await?;
    Ok(())
}
