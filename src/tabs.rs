//! One leader among the tabs of the same Kustomer user in this browser, over a
//! `BroadcastChannel` (the election itself is [`adapter_core::tabs`]). Only the leader forwards
//! Kustomer status changes; the others say so and offer "use here".

use adapter_core::tabs::{Election, Role, TabMessage, UseHereRefused, TICK_MS};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use crate::effects::{effect, effect_with};

/// The channel's name for a Kustomer user: one election per agent.
pub fn channel_name(kustomer_user_id: &str) -> String {
    format!("ccai-adapter.tabs.{kustomer_user_id}")
}

/// What [`use_tab_leader`] returns.
#[derive(Clone, Copy)]
pub struct TabLeader {
    /// This tab's role; `Leader` when no channel is available (a lone tab leads).
    pub role: Signal<Role>,
    /// Another tab leads and is in a call: "use here" is not offered.
    pub leader_in_call: Signal<bool>,
    plumbing: StoredValue<Option<Plumbing>, LocalStorage>,
    state: RwSignal<(Role, bool)>,
}

struct Plumbing {
    election: Election,
    channel: web_sys::BroadcastChannel,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_leave: Closure<dyn FnMut()>,
    _tick: gloo_timers::callback::Interval,
}

impl Drop for Plumbing {
    fn drop(&mut self) {
        for message in self.election.leaving() {
            post(&self.channel, &message);
        }
        self.channel.set_onmessage(None);
        if let Some(window) = web_sys::window() {
            let _ = window.remove_event_listener_with_callback(
                "pagehide",
                self._on_leave.as_ref().unchecked_ref(),
            );
        }
        self.channel.close();
    }
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn post(channel: &web_sys::BroadcastChannel, message: &TabMessage) {
    let _ = channel.post_message(&JsValue::from_str(&message.to_json()));
}

impl TabLeader {
    fn publish(&self) {
        let state = self
            .plumbing
            .try_with_value(|p| {
                p.as_ref()
                    .map(|p| (p.election.role(), p.election.leader_in_call()))
            })
            .flatten()
            .unwrap_or((Role::Leader, false));
        if self.state.try_get_untracked() != Some(state) {
            let _ = self.state.try_set(state);
        }
    }

    fn run(&self, step: impl FnOnce(&mut Election) -> Vec<TabMessage>) {
        self.plumbing.try_update_value(|p| {
            if let Some(p) = p.as_mut() {
                for message in step(&mut p.election) {
                    post(&p.channel, &message);
                }
            }
        });
        self.publish();
    }

    /// Makes this tab the leader, unless the leader is in a call.
    pub fn use_here(&self) -> Result<(), UseHereRefused> {
        let mut refused = None;
        self.run(|election| match election.use_here(now()) {
            Ok(out) => out,
            Err(why) => {
                refused = Some(why);
                Vec::new()
            }
        });
        refused.map_or(Ok(()), Err)
    }

    pub fn is_leader(&self) -> bool {
        self.role.get_untracked() == Role::Leader
    }

    /// [`TabLeader::is_leader`], tracked: an effect that reads it runs again when this tab
    /// becomes (or stops being) the leader.
    pub fn leads(&self) -> bool {
        self.role.get() == Role::Leader
    }
}

/// Joins the election on `channel` (restarting when it changes; `None` leaves it) for as long
/// as the calling component lives. `in_call` keeps a leader in place during a call.
pub fn use_tab_leader(channel: Signal<Option<String>>, in_call: Signal<bool>) -> TabLeader {
    let state = RwSignal::new((Role::Leader, false));
    let leader = TabLeader {
        role: Signal::derive(move || state.get().0),
        leader_in_call: Signal::derive(move || state.get().1),
        plumbing: StoredValue::new_local(None),
        state,
    };
    effect_with(move |previous: Option<Option<String>>| {
        let name = channel.get();
        if previous.as_ref() == Some(&name) {
            return name;
        }
        leader.plumbing.set_value(None);
        if let Some(name) = &name {
            match join(leader, name) {
                Ok(plumbing) => leader.plumbing.set_value(Some(plumbing)),
                // No BroadcastChannel: this tab cannot know of others and leads alone.
                Err(error) => {
                    leptos::logging::warn!("tab coordination unavailable: {error:?}");
                }
            }
        }
        leader.publish();
        name
    });
    effect(move || {
        let in_call = in_call.get();
        leader.run(|election| election.set_in_call(in_call, now()));
    });
    on_cleanup(move || leader.plumbing.set_value(None));
    leader
}

fn join(leader: TabLeader, name: &str) -> Result<Plumbing, JsValue> {
    let channel = web_sys::BroadcastChannel::new(name)?;
    // Random, exact in JavaScript numbers, never 0.
    let id = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64 + 1;
    let on_message = Closure::<dyn FnMut(_)>::new(move |event: web_sys::MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        // Same-origin tabs only reach this channel; still, a bad message is dropped.
        if let Ok(message) = adapter_core::json_fields::from_str::<TabMessage>(&text) {
            leader.run(|election| election.receive(&message, now()));
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let on_leave = Closure::<dyn FnMut()>::new(move || {
        leader.run(Election::leaving);
    });
    if let Some(window) = web_sys::window() {
        window.add_event_listener_with_callback("pagehide", on_leave.as_ref().unchecked_ref())?;
    }
    let tick = gloo_timers::callback::Interval::new(TICK_MS, move || {
        leader.run(|election| election.tick(now()));
    });
    Ok(Plumbing {
        election: Election::new(id, now()),
        channel,
        _on_message: on_message,
        _on_leave: on_leave,
        _tick: tick,
    })
}

/// Kustomer's routing statuses from a `GET /v1/routing/statuses` answer
/// (`{"data": [{"id", "attributes": {"name"}}]}`); entries without an id or a name are skipped.
pub fn kustomer_statuses(body: &serde_json::Value) -> Vec<crate::agent::KustomerStatus> {
    body["data"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|entry| {
                    let id = entry["id"].as_str()?.trim();
                    let name = entry["attributes"]["name"].as_str()?.trim();
                    (!id.is_empty() && !name.is_empty()).then(|| crate::agent::KustomerStatus {
                        id: id.to_owned(),
                        name: name.to_owned(),
                    })
                })
                .take(200)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn kustomer_statuses_are_read_leniently() {
        let body = json!({"data": [
            {"id": "st-1", "type": "routing_status", "attributes": {"name": "Available", "statusType": "available"}},
            {"id": "", "attributes": {"name": "Nameless id"}},
            {"id": "st-3", "attributes": {}},
            {"attributes": {"name": "No id"}},
            {"id": "st-4", "attributes": {"name": " Lunch "}},
        ]});
        let statuses = super::kustomer_statuses(&body);
        let ids: Vec<_> = statuses
            .iter()
            .map(|s| (s.id.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(ids, [("st-1", "Available"), ("st-4", "Lunch")]);
        assert!(super::kustomer_statuses(&json!({"errors": []})).is_empty());
    }
}
