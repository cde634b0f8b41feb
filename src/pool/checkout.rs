//! [`Seats`]: one seat per open connection, recording who holds it (since when, acquired
//! where) and how to interrupt it. What leak detection, `max_checkout`, a bounded close and
//! the "held for …" part of a timeout message read.
//!
//! A connection takes a seat when it opens and gives it back when it is retired. A seat is
//! *lent* while a caller holds the connection, and *reclaimed* once the pool took the
//! connection back from that caller (socket shut down): a reclaimed seat no longer counts as
//! open, but stays taken until the holder returns the dead connection, so its number is never
//! reused under the holder's feet. Preallocated for `max_size` seats: the hot path allocates
//! nothing.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Tick;
use crate::manager::Interrupt;

/// Where a connection was acquired.
#[derive(Clone, Debug, Default)]
pub(crate) enum Site {
    #[default]
    Unknown,
    /// A Rust caller (`#[track_caller]` on the acquiring functions).
    Rust(&'static Location<'static>),
    /// A label a C or Go caller passed (`file.c:42`, a request name, ...).
    Label(Arc<str>),
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Unknown => f.write_str("unknown"),
            Site::Rust(l) => write!(f, "{}:{}:{}", l.file(), l.line(), l.column()),
            Site::Label(s) => f.write_str(s),
        }
    }
}

/// A checkout in progress.
#[derive(Debug)]
pub(crate) struct Lent {
    pub(crate) since: Tick,
    pub(crate) site: Site,
    /// Reported as a suspected leak already.
    pub(crate) warned: bool,
    /// Taken back from the holder.
    pub(crate) reclaimed: bool,
}

pub(crate) struct Seat {
    pub(crate) conn_id: u64,
    pub(crate) backend_pid: Option<i32>,
    pub(crate) interrupt: Option<Arc<dyn Interrupt>>,
    pub(crate) lent: Option<Lent>,
}

/// A checkout past a threshold, found by [`State::scan_checkouts`](super::state::State).
pub(crate) struct Overdue {
    pub(crate) conn_id: u64,
    pub(crate) backend_pid: Option<i32>,
    pub(crate) held: Duration,
    pub(crate) site: Site,
    /// `Some` when the connection was reclaimed: sever it, then cancel.
    pub(crate) interrupt: Option<Arc<dyn Interrupt>>,
}

/// The seat table. `None` entries are free and listed in `free`.
#[derive(Default)]
pub(crate) struct Seats {
    seats: Vec<Option<Seat>>,
    free: Vec<u32>,
}

impl Seats {
    pub(crate) fn with_capacity(n: usize) -> Seats {
        Seats {
            seats: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
        }
    }

    /// Gives a newly opened connection a seat; returns its number.
    pub(crate) fn take(
        &mut self,
        conn_id: u64,
        backend_pid: Option<i32>,
        interrupt: Option<Arc<dyn Interrupt>>,
    ) -> u32 {
        let seat = Seat {
            conn_id,
            backend_pid,
            interrupt,
            lent: None,
        };
        match self.free.pop() {
            Some(i) => {
                self.seats[i as usize] = Some(seat);
                i
            }
            None => {
                self.seats.push(Some(seat));
                (self.seats.len() - 1) as u32
            }
        }
    }

    /// Frees seat `i`; returns its interrupter (to be dropped outside the lock).
    pub(crate) fn give_back(&mut self, i: u32) -> Option<Arc<dyn Interrupt>> {
        let seat = self.seats.get_mut(i as usize)?.take()?;
        self.free.push(i);
        seat.interrupt
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> Option<&mut Seat> {
        self.seats.get_mut(i as usize)?.as_mut()
    }

    pub(crate) fn lend(&mut self, i: u32, since: Tick, site: Site) {
        if let Some(seat) = self.get_mut(i) {
            seat.lent = Some(Lent {
                since,
                site,
                warned: false,
                reclaimed: false,
            });
        }
    }

    /// Ends a checkout; returns true when the pool had reclaimed it meanwhile.
    pub(crate) fn unlend(&mut self, i: u32) -> bool {
        match self.get_mut(i).and_then(|s| s.lent.take()) {
            Some(lent) => lent.reclaimed,
            None => false,
        }
    }

    /// Seats whose checkout is in progress and not reclaimed.
    pub(crate) fn lent_mut(&mut self) -> impl Iterator<Item = &mut Seat> {
        self.seats
            .iter_mut()
            .flatten()
            .filter(|s| s.lent.as_ref().is_some_and(|l| !l.reclaimed))
    }

    /// The longest checkout in progress: how long and where.
    pub(crate) fn longest(&self, now: Tick) -> Option<(Duration, &Site)> {
        self.seats
            .iter()
            .flatten()
            .filter_map(|s| s.lent.as_ref().filter(|l| !l.reclaimed))
            .map(|l| (now.since(l.since), &l.site))
            .max_by_key(|(held, _)| *held)
    }

    /// (taken and not reclaimed, lent and not reclaimed), for the invariant check.
    #[cfg(debug_assertions)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let mut taken = 0;
        let mut lent = 0;
        for seat in self.seats.iter().flatten() {
            match &seat.lent {
                Some(l) if l.reclaimed => {}
                Some(_) => {
                    taken += 1;
                    lent += 1;
                }
                None => taken += 1,
            }
        }
        (taken, lent)
    }
}
