//! The engine's systems: each a function over a store transaction, the clock reading and the id
//! maker it is handed. They never read the wall clock or touch anything but the transaction.

pub mod attempt;
pub mod batch;
pub mod cancel;
pub mod dequeue;
pub mod journal;
pub mod lanes;
pub mod limits;
pub mod metadata;
pub mod pool;
pub mod queues;
pub mod rates;
pub mod schedules;
pub mod stall;
pub mod tags;
pub mod tenancy;
pub mod timing;
pub mod trigger;
pub mod versions;
pub mod waitpoints;
pub mod workers;
