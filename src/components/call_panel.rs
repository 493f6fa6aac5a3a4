use adapter_core::agent_events::{CallControl, CallState, CallView, Channel, Direction};
use leptos::prelude::*;

use crate::{
    agent::Agent,
    caller::Caller,
    components::{on_click, write_input},
    effects::effect,
    i18n::{use_i18n, Text},
};

/// "m:ss", or "h:mm:ss" past an hour.
pub fn format_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn state_text(state: CallState) -> Text {
    match state {
        CallState::Dialing => Text::CallDialing,
        CallState::Ringing => Text::CallRinging,
        CallState::Connected => Text::CallConnected,
        CallState::OnHold => Text::CallOnHold,
        CallState::WrapUp => Text::CallWrapUp,
        CallState::Ended => Text::CallEnded,
    }
}

fn kind_text(call: &CallView) -> Text {
    match (call.channel, call.direction) {
        (Channel::Chat, Direction::Inbound) => Text::IncomingChat,
        (Channel::Chat, Direction::Outbound) => Text::Chat,
        (Channel::Voice, Direction::Inbound) => Text::IncomingCall,
        (Channel::Voice, Direction::Outbound) => Text::OutgoingCall,
    }
}

fn control_text(control: CallControl) -> Text {
    match control {
        CallControl::Answer => Text::Answer,
        CallControl::Hold => Text::Hold,
        CallControl::Resume => Text::Resume,
        CallControl::Mute => Text::Mute,
        CallControl::Unmute => Text::Unmute,
        CallControl::End => Text::EndCall,
        CallControl::Transfer => Text::Transfer,
        CallControl::Dtmf => Text::SendTones,
        CallControl::HangUpAndCallBack => Text::HangUpAndCallBack,
        CallControl::CallBack => Text::CallBack,
    }
}

/// The number the call panel names: the call's, else (a chat) its conversation.
fn number_of(call: &CallView) -> Option<String> {
    call.number.clone().or_else(|| call.conversation_id.clone())
}

/// The controls to show for `call`: those the upstream offers and the call's state allows.
pub fn offered_controls(call: &CallView, capabilities: &[CallControl]) -> Vec<CallControl> {
    CallControl::ALL
        .into_iter()
        .filter(|c| capabilities.contains(c) && c.applies_to(call))
        .collect()
}

/// The call or chat in progress (or the last one, while it offers "call back"): who, its state,
/// a timer that counts from when it connected (so it is right after a reload), and the
/// controls the connected upstream offers.
#[component]
pub fn CallPanel(
    agent: Agent,
    /// Who is calling, when Kustomer knows the number; else the panel shows the number.
    #[prop(optional, into)]
    caller: MaybeProp<Caller>,
) -> impl IntoView {
    let i18n = use_i18n();
    let now = Trigger::new();
    let tick = gloo_timers::callback::Interval::new(1_000, move || now.notify());
    let tick = StoredValue::new_local(Some(tick));
    on_cleanup(move || tick.set_value(None));
    let shown = move || {
        agent.state().with(|s| {
            s.call.clone().or_else(|| {
                s.last_call
                    .clone()
                    .filter(|c| CallControl::CallBack.applies_to(c))
            })
        })
    };
    let digits = RwSignal::new(String::new());
    let target = RwSignal::new(String::new());
    let run = move |call_id: i64, control: CallControl| {
        let field = match control {
            CallControl::Dtmf => Some(("digits", digits.get_untracked().trim().to_owned())),
            CallControl::Transfer => Some(("target", target.get_untracked().trim().to_owned())),
            _ => None,
        };
        if !field.as_ref().is_some_and(|(_, value)| value.is_empty()) {
            leptos::task::spawn_local(agent.control(call_id, control, field));
        }
    };
    // The panel is one view for the page's life, hidden while there is no call: each part reads
    // what it shows. A panel rendered again at each change of the call would either leave its
    // reactive parts' subscriptions behind on the long-lived signals (reactive_graph 0.2 does not
    // unsubscribe a dropped effect: about 20 kB a call over a day) or, rendered as plain values,
    // carry the framework's building and diffing of the whole panel in the wasm. Only the row of
    // buttons is rendered again (plain buttons, nothing reactive inside); the inputs show the
    // text of their signals, which their handlers write.
    let text_of = move |read: fn(&CallView, Option<Caller>) -> Option<String>| {
        Signal::derive(move || {
            shown()
                .and_then(|call| read(&call, caller.get()))
                .unwrap_or_default()
        })
    };
    let flag_of = move |read: fn(&CallView) -> bool| {
        Signal::derive(move || shown().is_some_and(|call| read(&call)))
    };
    // The caller's name once known (it may come after the panel shows), else the number.
    let who = text_of(|call, caller| match caller {
        Some(caller) => Some(caller.name),
        None => number_of(call),
    });
    let company = text_of(|_, caller| caller.and_then(|c| c.company));
    let number_line = text_of(|call, caller| caller.and_then(|_| number_of(call)));
    let state_name = text_of(|call, _| Some(format!("{:?}", call.state).to_ascii_lowercase()));
    let kind = Signal::derive(move || {
        shown()
            .map(|call| {
                let kind = if call.state.is_over() {
                    Text::LastCall
                } else {
                    kind_text(&call)
                };
                i18n.t(kind).to_owned()
            })
            .unwrap_or_default()
    });
    let state_text = Signal::derive(move || {
        shown()
            .map(|call| i18n.t(state_text(call.state)).to_owned())
            .unwrap_or_default()
    });
    let offered = move |control: CallControl| {
        Signal::derive(move || {
            shown().is_some_and(|call| {
                agent
                    .offer()
                    .with(|offer| offered_controls(&call, &offer.controls).contains(&control))
            })
        })
    };
    let busy = Signal::derive(move || agent.busy().get());
    let call_id = move || shown().map(|call| call.call_id);
    // The timer ticks in place: one effect for the panel's life writes the element's text.
    let timer = NodeRef::<leptos::html::Span>::new();
    effect(move || {
        now.track();
        let text = shown()
            .and_then(|call| call.connected_seconds(js_sys::Date::now() as i64))
            .map(format_duration);
        if let Some(element) = timer.get() {
            element.set_text_content(text.as_deref());
        }
    });
    let buttons = move || {
        let lang = i18n.lang.get();
        let busy = agent.busy().get();
        shown().map(|call| {
            let call_id = call.call_id;
            agent
                .offer()
                .with(|offer| offered_controls(&call, &offer.controls))
                .into_iter()
                .filter(|c| !matches!(c, CallControl::Dtmf | CallControl::Transfer))
                .map(|control| {
                    view! {
                        <button
                            type="button"
                            class=format!("button control control-{}", control.as_str())
                            class:primary=control == CallControl::Answer
                            disabled=busy
                            on:click=on_click(move |_| run(call_id, control))
                        >
                            {control_text(control).in_lang(lang)}
                        </button>
                    }
                })
                .collect_view()
        })
    };
    let field = move |control: CallControl,
                      value: RwSignal<String>,
                      label: Text,
                      kind: &'static str| {
        view! {
            <div class=format!("control-field control-{}", control.as_str()) hidden=Signal::derive(move || !offered(control).get())>
                <input
                    type=kind
                    aria-label=i18n.text(label)
                    placeholder=i18n.text(label)
                    prop:value=move || value.get()
                    on:input=write_input(value)
                />
                <button
                    type="button"
                    class="button"
                    disabled=busy
                    on:click=on_click(move |_| {
                        if let Some(id) = call_id() {
                            run(id, control);
                        }
                    })
                >
                    {i18n.text(control_text(control))}
                </button>
            </div>
        }
    };
    view! {
        <section
            class="call-panel"
            class:ringing=flag_of(|call| call.state == CallState::Ringing)
            data-state=state_name
            aria-live="assertive"
            hidden=Signal::derive(move || shown().is_none())
        >
            <p class="call-kind">{kind}</p>
            <p class="call-who">{who}</p>
            <p class="call-company" hidden=Signal::derive(move || company.with(String::is_empty))>{company}</p>
            <p class="call-number" hidden=Signal::derive(move || number_line.with(String::is_empty))>{number_line}</p>
            <p class="call-state">
                <span class="call-state-text">{state_text}</span>
                <span
                    class="call-timer"
                    role="timer"
                    aria-label=i18n.text(Text::CallTimer)
                    node_ref=timer
                    hidden=flag_of(|call| call.connected_at_ms.is_none())
                ></span>
                <span class="call-muted" hidden=flag_of(|call| !call.muted)>{i18n.text(Text::Muted)}</span>
            </p>
            <div class="call-controls">{buttons}</div>
            {field(CallControl::Dtmf, digits, Text::Tones, "tel")}
            {field(CallControl::Transfer, target, Text::TransferTo, "text")}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(65), "1:05");
        assert_eq!(format_duration(3_725), "1:02:05");
        assert_eq!(format_duration(-3), "0:00");
    }

    #[test]
    fn only_offered_controls_show() {
        let call = CallView {
            call_id: 1,
            state: CallState::Connected,
            number: Some("+14155552671".into()),
            ..CallView::default()
        };
        assert_eq!(offered_controls(&call, &[]), vec![], "public API: none");
        assert_eq!(
            offered_controls(&call, &[CallControl::End, CallControl::Answer]),
            vec![CallControl::End]
        );
    }
}
