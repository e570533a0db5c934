//! The conformance suite: what every Stint store must do, written once and run against each
//! backend.
//!
//! A backend's tests call [`conformance_tests!`] with an async expression that makes a fresh,
//! empty store; the macro expands to one `#[tokio::test]` per case, so cases run in parallel and
//! fail by name. Every bug fixed in a backend gets a case here, so the others are checked too.

pub mod batches;
pub mod fixtures;
pub mod lanes;
pub mod leases;
pub mod limits;
pub mod options;
pub mod queues;
pub mod rates;
pub mod rundata;
pub mod runs;
pub mod schedules;
pub mod tenancy;
pub mod transactions;
pub mod versions;
pub mod waitpoints;
pub mod waits;

pub use stint_store::Store;

/// Expands to one test per conformance case. `$make` is an expression evaluating to a future of
/// an `Arc<dyn Store>` that is fresh and empty.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            tenancy::inserts_and_lists,
            tenancy::duplicate_key_is_refused,
            tenancy::lookups_by_slug_ref_and_project,
            tenancy::keys_are_found_listed_and_revoked,
            tenancy::access_tokens_round_trip,
            tenancy::admin_token_is_stored_once,
            queues::take_orders_by_score_and_respects_max_score,
            queues::heads_and_take_filter_by_task,
            queues::running_counts_and_limits,
            queues::duplicate_queue_name_is_refused,
            queues::controls_round_trip,
            lanes::lanes_list_keys_and_take_one_lane,
            limits::environment_limits_round_trip,
            limits::lane_counts_move_and_empty_keys_go,
            rates::rate_limits_round_trip,
            rates::rate_times_are_set_read_and_pruned,
            runs::insert_get_round_trip,
            runs::transition_is_fenced,
            runs::heartbeat_is_fenced_and_stalled_runs_are_found,
            runs::list_filters_and_pages,
            runs::idempotency_keys_are_unique,
            runs::transitions_in_a_batch_are_judged_one_by_one,
            rundata::metadata_and_tags_outlive_transitions,
            rundata::locked_metadata_changes_are_not_lost,
            rundata::children_are_listed_oldest_first,
            batches::batches_round_trip_and_keys_are_unique_per_environment,
            batches::runs_are_added_many_at_once_and_refused_one_by_one,
            batches::batch_items_are_its_runs_and_recorded_items_by_index,
            transactions::failed_job_rolls_back_only_itself,
            transactions::concurrent_writes_all_commit,
            transactions::reads_see_committed_writes,
            leases::a_lease_has_one_holder_until_it_expires,
            leases::signals_arrive_when_committed,
            options::due_runs_are_found_by_time,
            options::debounce_keys_and_input,
            options::request_keys_keep_their_answer,
            options::tasks_keep_their_settings,
            versions::versions_are_unique_per_environment_and_the_last_made_is_current,
            versions::workers_keep_their_versions,
            versions::takes_pass_over_runs_locked_to_another_version,
            waitpoints::waitpoints_round_trip_and_keys_are_unique_per_environment,
            waitpoints::a_retired_key_can_be_held_again,
            waitpoints::completing_is_once_and_keeps_the_first_output,
            waitpoints::due_waitpoints_are_found_by_time_earliest_first,
            waitpoints::pending_waitpoints_of_runs_and_batches_are_found,
            waitpoints::tokens_are_listed_by_filters_newest_first,
            waits::blocking_is_idempotent_and_counts_pending_waitpoints,
            waits::unfinished_runs_of_a_batch_are_counted,
            waits::journal_entries_are_kept_in_call_order,
            waits::a_secret_keeps_its_first_value,
            waits::resuming_is_kept_by_every_run_write,
            schedules::schedules_round_trip_and_updates_keep_what_is_fixed,
            schedules::duplicate_schedules_are_refused_and_the_transaction_goes_on,
            schedules::schedules_are_listed_counted_and_deleted,
            schedules::due_schedules_are_found_by_time_earliest_first,
            schedules::a_time_fires_once_and_a_run_knows_its_fire,
            schedules::a_schedule_moves_on_only_from_the_time_it_was_read_at,
        );
    };
    (@cases $make:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: std::sync::Arc<dyn $crate::Store> = $make.await;
                $crate::$module::$case(store).await;
            }
        )*
    };
}
