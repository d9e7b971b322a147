//! Issue 14, "hold under abuse": connection limits, back-pressure on heavy reads, refusals
//! an HTTP/1.1 client can read, and ambiguous requests refused. Each test starts the real
//! binary with small limits and attacks it over raw sockets and real clients.

mod ambiguity;
mod connections;
mod health_probe;
mod load;
mod raw_http;
mod refusals;
