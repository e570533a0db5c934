//! `stint schedules …`: make, list, show, switch and delete schedules through the API.

use clap::Subcommand;
use comfy_table::{Table, presets};
use stint_protocol::api::IdResponse;
use stint_protocol::schedules::{CreateScheduleRequest, ScheduleListResponse, ScheduleObject, ScheduleType};

use crate::client::{Client, Connection};

/// `stint schedules …`.
#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// Make a schedule that triggers a task at each time of a cron expression, and print it. With
    /// the deduplication key of an existing schedule, change that one instead.
    Create {
        /// The task to trigger; the environment must know it (a worker registered it).
        #[arg(long)]
        task: String,
        /// A 5-field cron expression: minute, hour, day of month, month, day of week.
        #[arg(long)]
        cron: String,
        /// The IANA time zone to read the expression in (`Europe/London`); UTC by default.
        #[arg(long)]
        timezone: Option<String>,
        /// The schedule's deduplication key; by default one made of the task, expression, time
        /// zone and external id, so the same command twice makes one schedule.
        #[arg(long)]
        dedup_key: Option<String>,
        /// Your id for the schedule (a user's id, say), handed to each run in its payload.
        #[arg(long)]
        external_id: Option<String>,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the environment's schedules, by task.
    List {
        /// Only the schedules of this task.
        #[arg(long)]
        task: Option<String>,
        /// The page to show, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// Schedules per page (1–100).
        #[arg(long, default_value_t = 25)]
        per_page: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show a schedule as JSON.
    Get {
        /// The schedule's id, `sched_…`.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Let a schedule trigger runs again.
    Activate {
        /// The schedule's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Stop a schedule triggering runs; it keeps its times and can be activated again.
    Deactivate {
        /// The schedule's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a schedule made through the API (a task's declared schedule goes with its code).
    Delete {
        /// The schedule's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Runs a `stint schedules` subcommand.
pub async fn run(command: SchedulesCommand) -> anyhow::Result<()> {
    match command {
        SchedulesCommand::Create { task, cron, timezone, dedup_key, external_id, json, connection } => {
            let deduplication_key = dedup_key.unwrap_or_else(|| {
                let zone = timezone.as_deref().unwrap_or("UTC");
                format!("cli:{task}:{cron}:{zone}:{}", external_id.as_deref().unwrap_or_default())
            });
            let request = CreateScheduleRequest { task, cron, deduplication_key, external_id, timezone, window: None };
            let schedule: ScheduleObject = Client::new(&connection)?.post("/api/v1/schedules", &request).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&schedule)?);
            } else {
                println!("{}", summary(&schedule));
            }
        }
        SchedulesCommand::List { task, page, per_page, json, connection } => {
            let mut query = vec![("page".to_string(), page.to_string()), ("perPage".to_string(), per_page.to_string())];
            if let Some(task) = task {
                query.push(("task".to_string(), task));
            }
            let list: ScheduleListResponse = Client::new(&connection)?.get("/api/v1/schedules", &query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{}", table(&list.data));
                let pages = &list.pagination;
                println!("page {} of {} ({} schedules)", pages.current_page, pages.total_pages.max(1), pages.count);
            }
        }
        SchedulesCommand::Get { id, connection } => {
            let schedule: ScheduleObject =
                Client::new(&connection)?.get(&format!("/api/v1/schedules/{id}"), &[]).await?;
            println!("{}", serde_json::to_string_pretty(&schedule)?);
        }
        SchedulesCommand::Activate { id, connection } => switch(&connection, &id, "activate").await?,
        SchedulesCommand::Deactivate { id, connection } => switch(&connection, &id, "deactivate").await?,
        SchedulesCommand::Delete { id, connection } => {
            let deleted: IdResponse = Client::new(&connection)?.delete(&format!("/api/v1/schedules/{id}")).await?;
            println!("{}", deleted.id);
        }
    }
    Ok(())
}

/// Activates or deactivates a schedule and prints what it is now.
async fn switch(connection: &Connection, id: &str, action: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/schedules/{id}/{action}");
    let schedule: ScheduleObject = Client::new(connection)?.post(&path, &serde_json::json!({})).await?;
    println!("{}", summary(&schedule));
    Ok(())
}

/// A schedule in a line: its id, task, expression and what happens next.
fn summary(schedule: &ScheduleObject) -> String {
    let next = match (&schedule.next_run, schedule.active) {
        (_, false) => "inactive".to_string(),
        (Some(next), true) => format!("next run {next}"),
        (None, true) => "no run to come".to_string(),
    };
    format!(
        "{} {} \"{}\" in {} ({}): {next}",
        schedule.id, schedule.task, schedule.generator.expression, schedule.timezone, schedule.generator.description
    )
}

fn table(schedules: &[ScheduleObject]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(["id", "task", "type", "cron", "timezone", "next run", "active", "external id"]);
    for schedule in schedules {
        let kind = match schedule.kind {
            ScheduleType::Declarative => "declarative",
            ScheduleType::Imperative => "imperative",
        };
        table.add_row([
            schedule.id.clone(),
            schedule.task.clone(),
            kind.to_string(),
            schedule.generator.expression.clone(),
            schedule.timezone.clone(),
            schedule.next_run.clone().unwrap_or_default(),
            schedule.active.to_string(),
            schedule.external_id.clone().unwrap_or_default(),
        ]);
    }
    table
}
