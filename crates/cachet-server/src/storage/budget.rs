//! The upload memory budget (`--upload-memory`): the bytes that uploads may hold in buffers at
//! once, counted across every client upload *and* the tiered store's background copies to its
//! shared tier (a whole Redis value, an S3 part, the local object read to copy it), so one
//! setting bounds both.
//!
//! A semaphore of bytes. Each upload starts with an empty [`Held`] and grows it to what its
//! buffers hold before it buffers more ([`Held::grow_to`]); dropping the `Held` gives the bytes
//! back. A client upload waits a bounded time for room (then `503`); a background copy waits as
//! long as it takes, since nobody waits on it. An upload that would need more than the whole
//! budget is refused either way: waiting would never end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// See the module docs.
#[derive(Debug)]
pub struct UploadBudget {
    /// One permit per byte that may still be taken.
    bytes: Arc<Semaphore>,
    /// The whole budget.
    total: u64,
}

/// Why [`Held::grow_to`] did not get its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Other uploads held the room for longer than the wait allowed.
    Busy,
    /// More than the whole budget.
    OverBudget,
}

impl UploadBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Arc<UploadBudget> {
        let permits = usize::try_from(total)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Arc::new(UploadBudget {
            bytes: Arc::new(Semaphore::new(permits)),
            total,
        })
    }

    /// The whole budget.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes not taken now.
    pub fn available(&self) -> u64 {
        self.bytes.available_permits() as u64
    }

    /// A share of the budget holding nothing yet.
    pub fn share(self: &Arc<Self>) -> Held {
        Held {
            budget: self.clone(),
            permit: None,
            bytes: 0,
        }
    }
}

/// Bytes of the budget held by one upload, given back on drop.
#[derive(Debug)]
pub struct Held {
    budget: Arc<UploadBudget>,
    permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl Held {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `n` bytes in all (nothing to do if it holds that many already), waiting at most
    /// `wait` for the rest (`None`: as long as it takes).
    pub async fn grow_to(&mut self, n: u64, wait: Option<Duration>) -> Result<(), Refused> {
        if n <= self.bytes {
            return Ok(());
        }
        if n > self.budget.total {
            return Err(Refused::OverBudget);
        }
        let more = u32::try_from(n - self.bytes).map_err(|_| Refused::OverBudget)?;
        let acquire = self.budget.bytes.clone().acquire_many_owned(more);
        let permit = match wait {
            Some(wait) => tokio::time::timeout(wait, acquire)
                .await
                .map_err(|_| Refused::Busy)?,
            None => acquire.await,
        }
        .map_err(|_closed| Refused::Busy)?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.bytes = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn shares_wait_for_each_other_and_never_pass_the_total() {
        let budget = UploadBudget::new(10);
        let mut a = budget.share();
        a.grow_to(6, None).await.expect("room");
        let mut b = budget.share();
        let wait = Some(Duration::from_secs(2));
        assert_eq!(b.grow_to(5, wait).await, Err(Refused::Busy));
        assert_eq!(b.grow_to(11, None).await, Err(Refused::OverBudget));
        b.grow_to(4, wait).await.expect("room");
        assert_eq!(budget.available(), 0);
        drop(a);
        b.grow_to(10, wait).await.expect("room once a is gone");
        assert_eq!(b.bytes(), 10);
        drop(b);
        assert_eq!(budget.available(), 10);
    }
}
