//! How many event streams are open, per agent and per client address, against the configured
//! caps (`--max-streams-per-agent`, `--max-streams-per-address`). A stream holds a [`Slot`]
//! while it is open; the slot is given back when dropped, however the stream ends.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Arc, Mutex},
};

/// Which cap a stream was refused by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TooMany {
    #[error("too many event streams for this agent (at most {0})")]
    Agent(u32),
    #[error("too many event streams from this address (at most {0})")]
    Address(u32),
}

/// Open streams per key, up to a cap.
#[derive(Debug)]
struct Counts<K> {
    cap: u32,
    open: Mutex<HashMap<K, u32>>,
}

impl<K: Hash + Eq + Copy> Counts<K> {
    fn new(cap: u32) -> Self {
        Counts {
            cap,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, key: K) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.cap {
            return false;
        }
        *count += 1;
        true
    }

    fn give_back(&self, key: K) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&key) {
            *count = count.saturating_sub(1);
            // Forgotten at zero, so addresses seen once do not pile up.
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

/// The counts of open streams; cheap to clone.
#[derive(Clone, Debug)]
pub struct StreamLimits {
    agents: Arc<Counts<i64>>,
    addresses: Arc<Counts<IpAddr>>,
}

impl StreamLimits {
    pub fn new(per_agent: u32, per_address: u32) -> Self {
        StreamLimits {
            agents: Arc::new(Counts::new(per_agent)),
            addresses: Arc::new(Counts::new(per_address)),
        }
    }

    /// A slot for a connection from `address` (signed in or not yet).
    pub fn connection(&self, address: IpAddr) -> Result<Slot, TooMany> {
        if !self.addresses.take(address) {
            return Err(TooMany::Address(self.addresses.cap));
        }
        Ok(Slot {
            limits: self.clone(),
            address,
            agent: None,
        })
    }
}

/// One open stream's place in the counts.
#[derive(Debug)]
pub struct Slot {
    limits: StreamLimits,
    address: IpAddr,
    agent: Option<i64>,
}

impl Slot {
    /// The connection turned out to be `agent`'s: counted against the agent's cap too.
    pub fn agent(&mut self, agent: i64) -> Result<(), TooMany> {
        if self.agent.is_some() {
            return Ok(());
        }
        if !self.limits.agents.take(agent) {
            return Err(TooMany::Agent(self.limits.agents.cap));
        }
        self.agent = Some(agent);
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.addresses.give_back(self.address);
        if let Some(agent) = self.agent {
            self.limits.agents.give_back(agent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_agent_and_per_address_and_slots_come_back() {
        let limits = StreamLimits::new(2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut first = limits.connection(a).unwrap();
        first.agent(7).unwrap();
        let mut second = limits.connection(a).unwrap();
        second.agent(7).unwrap();
        let mut third = limits.connection(a).unwrap();
        assert_eq!(third.agent(7), Err(TooMany::Agent(2)));
        third.agent(8).unwrap();
        assert_eq!(limits.connection(a).err(), Some(TooMany::Address(3)));
        // Another address is counted apart; the agent's cap is across addresses.
        let mut elsewhere = limits.connection(b).unwrap();
        assert_eq!(elsewhere.agent(7), Err(TooMany::Agent(2)));
        drop(first);
        elsewhere.agent(7).unwrap();
        assert!(limits.connection(a).is_ok());
        drop((second, third, elsewhere));
        assert!(limits.agents.open.lock().unwrap().is_empty());
        assert!(limits.addresses.open.lock().unwrap().is_empty());
    }
}
