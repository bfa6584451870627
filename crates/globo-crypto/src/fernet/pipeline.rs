//! Threads: whether a token is worked on by one thread or two, and the two-stage pipeline that
//! links them. Every thread here is scoped: it is joined before the call that started it
//! returns, so no thread outlives a call and nothing runs in the background.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::io::StreamError;

/// Plaintext encrypted per step: a multiple of 48 (16-byte blocks and 3-byte base64 groups)
/// small enough that a chunk and its encoding stay in the L2 cache.
pub(crate) const CHUNK: usize = 48 * 2048;
/// Characters decoded per step (a multiple of 4): 96 KiB of bytes.
pub(crate) const PIECE_CHARS: usize = 4 * 32 * 1024;
/// With the `parallel` feature, inputs at least this large are pipelined over two threads;
/// below it a thread costs more than it saves.
pub(crate) const PARALLEL_MIN: usize = 1 << 20;
/// Buffers in flight between the pipeline stages.
pub(crate) const IN_FLIGHT: usize = 4;

/// How many threads work on one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    /// The calling thread only.
    One,
    /// The calling thread and one scoped thread, in a two-stage pipeline.
    Two,
}

impl Threads {
    /// The choice the public functions make for an input of `len` bytes (`None`: unknown, a
    /// pipe): two threads from [`PARALLEL_MIN`] when the crate is built with its `parallel`
    /// feature, else one. Tests pass both choices explicitly to the functions below.
    pub(crate) fn for_len(len: Option<usize>) -> Self {
        if cfg!(feature = "parallel") && len.is_none_or(|n| n >= PARALLEL_MIN) {
            Self::Two
        } else {
            Self::One
        }
    }
}

/// Runs `first` on a scoped thread and `second` on this one: `first` sends items to `second`
/// (at most [`IN_FLIGHT`] waiting), `second` sends spent buffers back to `first`, which starts
/// with `buffers`. Either stage stops when the other has gone (its channel ends are dropped),
/// so neither can block forever. The first stage's error is reported first: the second stage
/// fails only because the first stopped early, or for an error of its own.
pub(crate) fn two_stages<B, T, R1, R2>(
    buffers: impl IntoIterator<Item = B>,
    first: impl FnOnce(Receiver<B>, SyncSender<T>) -> Result<R1, StreamError> + Send,
    second: impl FnOnce(Receiver<T>, SyncSender<B>) -> Result<R2, StreamError>,
) -> Result<(R1, R2), StreamError>
where
    B: Send,
    T: Send,
    R1: Send,
{
    let (free_tx, free_rx) = sync_channel::<B>(IN_FLIGHT);
    let (done_tx, done_rx) = sync_channel::<T>(IN_FLIGHT);
    for buffer in buffers.into_iter().take(IN_FLIGHT) {
        // Cannot fail: the channel has room for IN_FLIGHT buffers and its receiver is alive.
        let _ = free_tx.send(buffer);
    }
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || first(free_rx, done_tx));
        // The second stage's channel ends are dropped when it returns, so the first cannot
        // block on them.
        let second = second(done_rx, free_tx);
        let first = producer.join().unwrap_or(Err(StreamError::Pipeline))?;
        Ok((first, second?))
    })
}

/// Runs `beside` on a scoped thread, fed by `main` on this one through a channel (at most
/// `4 * IN_FLIGHT` items waiting); returns both results once `main` is done and `beside` has
/// taken everything it was sent.
pub(crate) fn beside<T, R1, R2>(
    beside: impl FnOnce(Receiver<T>) -> R1 + Send,
    main: impl FnOnce(SyncSender<T>) -> R2,
) -> Result<(R1, R2), StreamError>
where
    T: Send,
    R1: Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<T>(IN_FLIGHT * 4);
        let other = scope.spawn(move || beside(rx));
        let main = main(tx);
        let other = other.join().map_err(|_| StreamError::Pipeline)?;
        Ok((other, main))
    })
}
