//! The core's read models: queries that return views of its state without changing it (every
//! one takes `&self`, or is a pure function of a view), for operators, clients and the
//! shell's own bookkeeping.
//!
//! - `queries`: stake per operator, the agents, task records and lists, and the lookups the
//!   shell needs (a task's owner, its inputs, what awaits verification).
//! - `observe`: what the metrics endpoint and the fleet page show (tasks by state, recent
//!   slashes, predicted against actual proving time, agents with their GPUs).
//! - `explain`: a task's history folded into why it went where it went.
//!
//! A few small lookups stay beside the state they read (`tasks/breaker.rs`,
//! `tasks/agent_book.rs`, `tasks/learned.rs`, the policy and ledger in `tasks/mod.rs`).
//!
//! The views are the core's own types; the coordinator's `server::views` translates them into
//! the protocol's messages, cut to the wire's bounds. The write side
//! (the `handle_*` events) is the rest of `tasks`; the admission counters the core keeps as
//! it decides are in `tasks/stats.rs`, read here through `admission_stats`.

mod explain;
mod observe;
mod queries;

pub use explain::{explain, Decision, Failure, FailureCause, TaskExplanation};
pub use observe::{AgentAccuracy, FleetAgent, MovingTask, SlashRecord, TASK_STATES};
pub use queries::{AgentRow, OperatorRow, TaskListEntry, TaskView};
