//! Human agents: warm transfers from the robot to people.
//!
//! - [`queue`]: the queue engine, sans-IO: agents' states, skills routing, offers, overflow,
//!   estimated wait, tested with simulated time.
//! - [`desk`]: its tokio shell: agents' sessions and notices, transfers from calls, ringing the
//!   agents' SIP phones, and the audio bridge between a customer and an agent.
//! - [`hold`]: the music a customer hears while waiting.
//! - [`listen`]: a supervisor's listen-in on a live call (the desk taps every agent leg).
//! - [`softphone`]: a console's WebRTC leg as the desk's agent leg.
//! - [`store`]: agent accounts, queues, and what agents record about the calls they took.

pub mod desk;
pub mod hold;
pub mod listen;
pub mod queue;
pub mod softphone;
pub mod store;
