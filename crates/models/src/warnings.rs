//! Warnings, as Keras gives them through Python's `warnings` module: a
//! message on standard error, once per process for each distinct message,
//! for input that is legal but probably not what was meant (a
//! `from_logits=True` loss on a softmax output, a callback monitoring a
//! quantity that is not in the logs).
//!
//! Each message is also kept, so that a program (or a test) can read what
//! was said with [`emitted`].
//!
//! ```
//! use hebb_models::warnings;
//!
//! warnings::warn("the doc example's warning");
//! warnings::warn("the doc example's warning"); // printed once
//! let said = warnings::emitted();
//! assert_eq!(said.iter().filter(|m| *m == "the doc example's warning").count(), 1);
//! ```

use std::sync::Mutex;

/// Every distinct message warned so far in this process, in order.
static EMITTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints `warning: {message}` to standard error, unless the same message
/// was already given in this process (Python's default warning filter, which
/// Keras relies on, also shows each warning once per location).
pub fn warn(message: impl Into<String>) {
    let message = message.into();
    // A poisoned lock only means another thread panicked while pushing; the list is still valid.
    let mut emitted = EMITTED.lock().unwrap_or_else(|e| e.into_inner());
    if !emitted.contains(&message) {
        eprintln!("warning: {message}");
        emitted.push(message);
    }
}

/// The distinct messages [`warn`] has given in this process, oldest first.
pub fn emitted() -> Vec<String> {
    EMITTED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
