//! One leader among the tabs of the same agent (Kustomer open several times in one browser):
//! only the leader forwards Kustomer status changes and performs screen pops. The tabs talk over
//! a broadcast channel; this is the election, pure, driven by messages and a clock.
//!
//! - The leader says so every [`HEARTBEAT_MS`].
//! - A tab that has heard no leader for [`LEADER_TIMEOUT_MS`] (or was told the leader left)
//!   claims; after [`CLAIM_WAIT_MS`] without a better claim or a leader, it leads. Among claims,
//!   the smaller tab id wins. A new tab first listens for [`JOIN_WAIT_MS`], so it never grabs
//!   leadership from a live leader.
//! - Two leaders (after a tab slept): the one in a call stays, else the smaller id.
//! - "Use here" moves leadership to the asking tab, unless the leader is in a call; it wins over
//!   a tab elected at the same moment.
//!
//! With a tick every [`TICK_MS`], a leader that closes cleanly is replaced within
//! `CLAIM_WAIT_MS + TICK_MS`, and one that vanishes within
//! `LEADER_TIMEOUT_MS + CLAIM_WAIT_MS + 2 × TICK_MS` (under 2 s).

use serde::{Deserialize, Serialize};

pub const HEARTBEAT_MS: f64 = 400.0;
pub const LEADER_TIMEOUT_MS: f64 = 1_200.0;
pub const CLAIM_WAIT_MS: f64 = 200.0;
pub const JOIN_WAIT_MS: f64 = 600.0;
pub const TICK_MS: u32 = 100;

/// A message between the tabs of one agent. On the wire, one flat object (`{"type", "from",
/// "in_call"}`): decoding it costs the widget little code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "Wire", into = "Wire")]
pub enum TabMessage {
    /// "I lead" (since `term`, and whether I am in a call).
    Leader { from: u64, term: u64, in_call: bool },
    /// "I would lead: anyone better?"
    Claim { from: u64 },
    /// The leader is closing.
    Leaving { from: u64 },
    /// "Let me lead from `term` on" (the agent clicked "use here" in that tab).
    UseHere { from: u64, term: u64 },
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Leader,
    Claim,
    Leaving,
    UseHere,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: Kind,
    from: u64,
    #[serde(default)]
    term: u64,
    #[serde(default)]
    in_call: bool,
}

impl From<Wire> for TabMessage {
    fn from(wire: Wire) -> Self {
        let from = wire.from;
        match wire.kind {
            Kind::Leader => TabMessage::Leader {
                from,
                term: wire.term,
                in_call: wire.in_call,
            },
            Kind::Claim => TabMessage::Claim { from },
            Kind::Leaving => TabMessage::Leaving { from },
            Kind::UseHere => TabMessage::UseHere {
                from,
                term: wire.term,
            },
        }
    }
}

impl TabMessage {
    /// The message as JSON text, exactly as its derived serialiser writes it (which would be
    /// code of its own in the widget).
    pub fn to_json(&self) -> String {
        let wire = Wire::from(self.clone());
        let kind = match wire.kind {
            Kind::Leader => "leader",
            Kind::Claim => "claim",
            Kind::Leaving => "leaving",
            Kind::UseHere => "use_here",
        };
        format!(
            r#"{{"type":"{kind}","from":{},"term":{},"in_call":{}}}"#,
            wire.from, wire.term, wire.in_call
        )
    }
}

impl crate::json_fields::FromJson for TabMessage {
    fn from_fields(
        f: crate::json_fields::Fields<'_>,
    ) -> Result<Self, crate::json_fields::FieldError> {
        use crate::json_fields::{boolean, one_of, uint};
        const KINDS: [Kind; 4] = [Kind::Leader, Kind::Claim, Kind::Leaving, Kind::UseHere];
        Ok(Wire {
            kind: KINDS[f.req("type", one_of(&["leader", "claim", "leaving", "use_here"]))?],
            from: f.req("from", uint)?,
            term: f.or_default("term", uint)?,
            in_call: f.or_default("in_call", boolean)?,
        }
        .into())
    }
}

impl From<TabMessage> for Wire {
    fn from(message: TabMessage) -> Self {
        let (kind, from, term, in_call) = match message {
            TabMessage::Leader {
                from,
                term,
                in_call,
            } => (Kind::Leader, from, term, in_call),
            TabMessage::Claim { from } => (Kind::Claim, from, 0, false),
            TabMessage::Leaving { from } => (Kind::Leaving, from, 0, false),
            TabMessage::UseHere { from, term } => (Kind::UseHere, from, term, false),
        };
        Wire {
            kind,
            from,
            term,
            in_call,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Listening before taking part.
    Joining,
    Follower,
    Claiming,
    Leader,
}

impl Role {
    /// The role in lower case (`joining`, `follower`, `claiming`, `leader`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Joining => "joining",
            Role::Follower => "follower",
            Role::Claiming => "claiming",
            Role::Leader => "leader",
        }
    }
}

/// Why "use here" was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseHereRefused {
    /// Never take over from a tab in a call.
    LeaderInCall,
}

/// One tab's view of the election.
#[derive(Clone, Debug)]
pub struct Election {
    me: u64,
    role: Role,
    since: f64,
    last_heartbeat_sent: f64,
    leader: Option<Leader>,
    in_call: bool,
    /// The newest leadership term seen; a tab that takes over leads a newer one.
    term: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Leader {
    id: u64,
    seen: f64,
    in_call: bool,
}

/// Which of two leaders stays: the one in a call, else the newer term, else the smaller id.
fn outranks(a: (bool, u64, u64), b: (bool, u64, u64)) -> bool {
    let (a_call, a_term, a_id) = a;
    let (b_call, b_term, b_id) = b;
    (a_call, a_term, std::cmp::Reverse(a_id)) > (b_call, b_term, std::cmp::Reverse(b_id))
}

impl Election {
    /// A new tab with id `me` (random, so ties are unlikely and never persistent) at `now`.
    pub fn new(me: u64, now: f64) -> Self {
        Election {
            me,
            role: Role::Joining,
            since: now,
            last_heartbeat_sent: f64::NEG_INFINITY,
            leader: None,
            in_call: false,
            term: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.me
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Whether the leader (another tab) is in a call: "use here" is then not offered.
    pub fn leader_in_call(&self) -> bool {
        self.leader.is_some_and(|l| l.in_call)
    }

    fn lead(&mut self, now: f64, out: &mut Vec<TabMessage>) {
        self.term += 1;
        self.role = Role::Leader;
        self.since = now;
        self.leader = None;
        self.heartbeat(now, out);
    }

    fn follow(&mut self, leader: Leader, now: f64) {
        self.role = Role::Follower;
        self.since = now;
        self.leader = Some(leader);
    }

    fn heartbeat(&mut self, now: f64, out: &mut Vec<TabMessage>) {
        self.last_heartbeat_sent = now;
        out.push(TabMessage::Leader {
            from: self.me,
            term: self.term,
            in_call: self.in_call,
        });
    }

    fn claim(&mut self, now: f64, out: &mut Vec<TabMessage>) {
        self.role = Role::Claiming;
        self.since = now;
        self.leader = None;
        out.push(TabMessage::Claim { from: self.me });
    }

    /// This tab's call state changed (a leader in a call keeps its place).
    pub fn set_in_call(&mut self, in_call: bool, now: f64) -> Vec<TabMessage> {
        let mut out = Vec::new();
        if self.in_call != in_call {
            self.in_call = in_call;
            if self.is_leader() {
                self.heartbeat(now, &mut out);
            }
        }
        out
    }

    /// Time passed: heartbeats, timeouts, claims decided.
    pub fn tick(&mut self, now: f64) -> Vec<TabMessage> {
        let mut out = Vec::new();
        match self.role {
            Role::Leader => {
                if now - self.last_heartbeat_sent >= HEARTBEAT_MS {
                    self.heartbeat(now, &mut out);
                }
            }
            Role::Joining => {
                if now - self.since >= JOIN_WAIT_MS {
                    self.claim(now, &mut out);
                }
            }
            Role::Follower => {
                let silent = self
                    .leader
                    .is_none_or(|l| now - l.seen >= LEADER_TIMEOUT_MS);
                if silent {
                    self.claim(now, &mut out);
                }
            }
            Role::Claiming => {
                if now - self.since >= CLAIM_WAIT_MS {
                    self.lead(now, &mut out);
                }
            }
        }
        out
    }

    /// A message from another tab.
    pub fn receive(&mut self, message: &TabMessage, now: f64) -> Vec<TabMessage> {
        let mut out = Vec::new();
        match *message {
            TabMessage::Leader { from, .. }
            | TabMessage::Claim { from }
            | TabMessage::Leaving { from }
            | TabMessage::UseHere { from, .. }
                if from == self.me => {}
            TabMessage::Leader {
                from,
                term,
                in_call,
            } => {
                let other = Leader {
                    id: from,
                    seen: now,
                    in_call,
                };
                if self.is_leader() {
                    // Two leaders: the one in a call stays, else the newer term, else the
                    // smaller id.
                    let yield_to_other =
                        outranks((in_call, term, from), (self.in_call, self.term, self.me));
                    self.term = self.term.max(term);
                    if yield_to_other {
                        self.follow(other, now);
                    } else {
                        self.heartbeat(now, &mut out);
                    }
                } else {
                    self.term = self.term.max(term);
                    self.follow(other, now);
                }
            }
            TabMessage::Claim { from } => match self.role {
                // A live leader answers at once: the claimer follows.
                Role::Leader => self.heartbeat(now, &mut out),
                Role::Claiming if from < self.me => {
                    self.role = Role::Follower;
                    self.since = now;
                    self.leader = Some(Leader {
                        id: from,
                        seen: now,
                        in_call: false,
                    });
                }
                _ => {}
            },
            TabMessage::Leaving { from } => {
                if self.leader.is_some_and(|l| l.id == from) {
                    self.claim(now, &mut out);
                }
            }
            TabMessage::UseHere { from, term } => {
                self.term = self.term.max(term);
                if self.is_leader() && !self.in_call {
                    self.follow(
                        Leader {
                            id: from,
                            seen: now,
                            in_call: false,
                        },
                        now,
                    );
                } else if self.is_leader() {
                    // Refused: say who leads, and that it is in a call.
                    self.heartbeat(now, &mut out);
                } else if self.leader.is_some_and(|l| !l.in_call) || self.leader.is_none() {
                    self.leader = Some(Leader {
                        id: from,
                        seen: now,
                        in_call: false,
                    });
                    self.role = Role::Follower;
                }
            }
        }
        out
    }

    /// The agent clicked "use here" in this tab.
    pub fn use_here(&mut self, now: f64) -> Result<Vec<TabMessage>, UseHereRefused> {
        if self.leader_in_call() {
            return Err(UseHereRefused::LeaderInCall);
        }
        // Two terms past the newest known: a tab elected at this moment took only one past
        // (its first heartbeat is still on its way), and yields when the two meet.
        self.term += 1;
        let mut out = vec![TabMessage::UseHere {
            from: self.me,
            term: self.term + 1,
        }];
        self.lead(now, &mut out);
        Ok(out)
    }

    /// The tab is closing: hand over at once.
    pub fn leaving(&mut self) -> Vec<TabMessage> {
        if self.is_leader() {
            self.role = Role::Follower;
            vec![TabMessage::Leaving { from: self.me }]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tabs on one channel: every message reaches every other tab, in order, at once.
    struct Bus {
        tabs: Vec<Option<Election>>,
        now: f64,
        sent: usize,
    }

    impl Bus {
        fn new(ids: &[u64]) -> Self {
            Bus {
                tabs: ids.iter().map(|id| Some(Election::new(*id, 0.0))).collect(),
                now: 0.0,
                sent: 0,
            }
        }

        fn deliver(&mut self, from: usize, messages: Vec<TabMessage>) {
            let mut queue: Vec<(usize, TabMessage)> =
                messages.into_iter().map(|m| (from, m)).collect();
            // A broadcast channel delivers one sender's messages in order.
            while !queue.is_empty() {
                let (from, message) = queue.remove(0);
                self.sent += 1;
                for index in 0..self.tabs.len() {
                    if index == from {
                        continue;
                    }
                    if let Some(tab) = self.tabs[index].as_mut() {
                        let replies = tab.receive(&message, self.now);
                        queue.extend(replies.into_iter().map(|m| (index, m)));
                    }
                }
            }
        }

        fn run(&mut self, ms: f64) {
            let end = self.now + ms;
            while self.now < end {
                self.now += f64::from(TICK_MS);
                for index in 0..self.tabs.len() {
                    if let Some(tab) = self.tabs[index].as_mut() {
                        let out = tab.tick(self.now);
                        self.deliver(index, out);
                    }
                }
            }
        }

        fn leaders(&self) -> Vec<u64> {
            self.tabs
                .iter()
                .flatten()
                .filter(|t| t.is_leader())
                .map(Election::id)
                .collect()
        }

        /// Runs until one tab leads; returns how long it took.
        fn time_to_leader(&mut self) -> f64 {
            let start = self.now;
            while self.leaders().len() != 1 {
                self.run(f64::from(TICK_MS));
                assert!(self.now - start < 10_000.0, "no leader");
            }
            self.now - start
        }
    }

    #[test]
    fn three_tabs_elect_exactly_one_leader_the_smallest_claim() {
        let mut bus = Bus::new(&[30, 10, 20]);
        bus.time_to_leader();
        bus.run(5_000.0);
        assert_eq!(bus.leaders(), vec![10]);
        let followers = bus
            .tabs
            .iter()
            .flatten()
            .filter(|t| t.role() == Role::Follower);
        assert_eq!(followers.count(), 2);
    }

    #[test]
    fn a_new_tab_does_not_take_over_a_live_leader() {
        let mut bus = Bus::new(&[50]);
        bus.time_to_leader();
        bus.tabs.push(Some(Election::new(1, bus.now)));
        bus.run(3_000.0);
        assert_eq!(
            bus.leaders(),
            vec![50],
            "the smaller id came later: it follows"
        );
    }

    #[test]
    fn a_closing_leader_is_replaced_fast_and_a_vanished_one_within_two_seconds() {
        let mut bus = Bus::new(&[1, 2, 3]);
        bus.time_to_leader();
        bus.run(1_000.0);
        // Closes cleanly.
        let out = bus.tabs[0]
            .as_mut()
            .map(Election::leaving)
            .unwrap_or_default();
        bus.deliver(0, out);
        bus.tabs[0] = None;
        let handover = bus.time_to_leader();
        assert!(
            handover <= CLAIM_WAIT_MS + f64::from(TICK_MS),
            "{handover} ms"
        );
        assert_eq!(bus.leaders(), vec![2]);
        bus.run(1_000.0);
        // Vanishes (crash, frozen tab).
        bus.tabs[1] = None;
        let failover = bus.time_to_leader();
        assert!(failover < 2_000.0, "{failover} ms");
        assert_eq!(bus.leaders(), vec![3]);
    }

    #[test]
    fn use_here_moves_the_leader_but_never_during_a_call() {
        let mut bus = Bus::new(&[1, 2]);
        bus.time_to_leader();
        bus.run(1_000.0);
        let now = bus.now;
        // The leader (1) is in a call: tab 2 is refused.
        let out = bus.tabs[0]
            .as_mut()
            .map(|t| t.set_in_call(true, now))
            .unwrap_or_default();
        bus.deliver(0, out);
        assert_eq!(
            bus.tabs[1].as_mut().map(|t| t.use_here(now)),
            Some(Err(UseHereRefused::LeaderInCall))
        );
        bus.run(2_000.0);
        assert_eq!(bus.leaders(), vec![1]);
        // The call ends: tab 2 takes over, and stays leader although its id is larger.
        let now = bus.now;
        let out = bus.tabs[0]
            .as_mut()
            .map(|t| t.set_in_call(false, now))
            .unwrap_or_default();
        bus.deliver(0, out);
        let out = bus.tabs[1]
            .as_mut()
            .map(|t| t.use_here(now))
            .and_then(Result::ok)
            .unwrap_or_default();
        bus.deliver(1, out);
        bus.run(3_000.0);
        assert_eq!(bus.leaders(), vec![2]);
    }

    #[test]
    fn use_here_survives_a_heartbeat_crossing_it() {
        let mut bus = Bus::new(&[1, 2]);
        bus.time_to_leader();
        bus.run(1_000.0);
        let now = bus.now;
        let taking_over = bus.tabs[1]
            .as_mut()
            .map(|t| t.use_here(now))
            .and_then(Result::ok)
            .unwrap_or_default();
        // The old leader's heartbeat was already on its way.
        let term = 1;
        let stale = TabMessage::Leader {
            from: 1,
            term,
            in_call: false,
        };
        let replies = bus.tabs[1]
            .as_mut()
            .map(|t| t.receive(&stale, now))
            .unwrap_or_default();
        assert!(
            bus.tabs[1].as_ref().is_some_and(Election::is_leader),
            "newer term stays"
        );
        bus.deliver(1, replies);
        bus.deliver(1, taking_over);
        bus.run(3_000.0);
        assert_eq!(bus.leaders(), vec![2]);
    }

    #[test]
    fn use_here_wins_over_a_leader_elected_at_the_same_moment() {
        // Tab 3 follows tab 1 because of its claim; tab 1 then leads, and its first heartbeat
        // crosses tab 3's "use here".
        let mut one = Election::new(1, 0.0);
        let mut three = Election::new(3, 0.0);
        let claim_one = one.tick(JOIN_WAIT_MS);
        let claim_three = three.tick(JOIN_WAIT_MS);
        for message in &claim_three {
            assert!(one.receive(message, JOIN_WAIT_MS).is_empty());
        }
        for message in &claim_one {
            assert!(three.receive(message, JOIN_WAIT_MS).is_empty());
        }
        assert_eq!(three.role(), Role::Follower);
        let now = JOIN_WAIT_MS + CLAIM_WAIT_MS;
        let first_heartbeat = one.tick(now);
        assert!(one.is_leader());
        let taking_over = three.use_here(now).unwrap_or_default();
        let mut replies_of_three = Vec::new();
        for message in &first_heartbeat {
            replies_of_three.extend(three.receive(message, now));
        }
        let mut replies_of_one = Vec::new();
        for message in &taking_over {
            replies_of_one.extend(one.receive(message, now));
        }
        let mut bus = Bus {
            tabs: vec![Some(one), Some(three)],
            now,
            sent: 0,
        };
        bus.deliver(1, replies_of_three);
        bus.deliver(0, replies_of_one);
        bus.run(5_000.0);
        assert_eq!(bus.leaders(), vec![3], "the agent's choice stands");
    }

    #[test]
    fn two_leaders_after_a_sleep_keep_the_one_in_a_call() {
        let mut a = Election::new(1, 0.0);
        let mut b = Election::new(2, 0.0);
        a.tick(1_000.0);
        a.tick(1_300.0);
        b.tick(1_000.0);
        b.tick(1_300.0);
        assert!(a.is_leader() && b.is_leader());
        b.set_in_call(true, 1_300.0);
        let replies = a.receive(
            &TabMessage::Leader {
                from: 2,
                term: 1,
                in_call: true,
            },
            1_400.0,
        );
        assert!(replies.is_empty());
        assert!(!a.is_leader(), "the smaller id yields to the tab in a call");
        let replies = b.receive(
            &TabMessage::Leader {
                from: 1,
                term: 1,
                in_call: false,
            },
            1_400.0,
        );
        assert_eq!(
            replies,
            vec![TabMessage::Leader {
                from: 2,
                term: 1,
                in_call: true
            }]
        );
        assert!(b.is_leader());
    }

    #[test]
    fn wire_shape() {
        let message = TabMessage::Leader {
            from: 7,
            term: 2,
            in_call: true,
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            text,
            r#"{"type":"leader","from":7,"term":2,"in_call":true}"#
        );
        assert_eq!(serde_json::from_str::<TabMessage>(&text).unwrap(), message);
        let claim: TabMessage = serde_json::from_str(r#"{"type":"claim","from":3}"#).unwrap();
        assert_eq!(claim, TabMessage::Claim { from: 3 });
        for bad in [r#"{"type":"rule","from":3}"#, r#"{"type":"claim"}"#, "7"] {
            assert!(serde_json::from_str::<TabMessage>(bad).is_err(), "{bad}");
        }
        let samples = [
            message,
            claim,
            TabMessage::Leaving { from: 4 },
            TabMessage::UseHere {
                from: u64::MAX,
                term: 9,
            },
        ];
        for sample in &samples {
            assert_eq!(sample.to_json(), serde_json::to_string(sample).unwrap());
        }
        crate::json_fields::assert_reads_as_serde(&samples, 5_000);
    }
}
