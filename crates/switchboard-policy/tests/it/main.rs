//! The integration tests of switchboard-policy (one binary).

mod audit;
mod auth;
mod ratelimit;
mod scope;
