//! Example utterances for the built-in handler intents. A flow may add its own examples under the
//! same names; these are always included so every flow understands the global requests.

pub const AGENT_REQUEST: &[&str] = &[
    "I want to talk to a person",
    "can I speak to a human",
    "put me through to an agent",
    "let me talk to someone real",
    "transfer me to a representative",
    "I need to speak with customer service",
    "get me an operator",
    "is there a real person I can talk to",
    "connect me with an advisor",
    "I don't want to talk to a machine",
];

pub const STOP_CALLING: &[&str] = &[
    "stop calling me",
    "don't call me again",
    "take me off your list",
    "remove my number from your list",
    "never call this number again",
    "please stop calling",
    "I do not want any more calls",
    "put me on the do not call list",
    "unsubscribe me from these calls",
    "quit calling me",
];

pub const WHO_IS_THIS: &[&str] = &[
    "who is this",
    "who are you",
    "who's calling",
    "what company is this",
    "who am I speaking with",
    "where are you calling from",
    "what is this call about",
    "are you a robot",
    "is this a real person",
    "why are you calling me",
];

pub const CALL_ME_LATER: &[&str] = &[
    "call me later",
    "this is not a good time",
    "can you call back tomorrow",
    "I'm busy right now",
    "I'm driving, call me back",
    "call me back this afternoon",
    "I can't talk now",
    "try again later",
    "can we do this another time",
    "I'm at work, call me in the evening",
];
