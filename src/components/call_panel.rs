use adapter_core::agent_events::{CallControl, CallState, CallView, Channel, Direction};
use leptos::prelude::*;

use serde_json::json;

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
        let extra = match control {
            CallControl::Dtmf => json!({"digits": digits.get_untracked().trim()}),
            CallControl::Transfer => json!({"target": target.get_untracked().trim()}),
            _ => json!({}),
        };
        let empty = extra
            .as_object()
            .and_then(|o| o.values().next())
            .is_some_and(|v| v.as_str().is_some_and(str::is_empty));
        if !empty {
            leptos::task::spawn_local(agent.control(call_id, control, extra));
        }
    };
    // The timer ticks in place: one effect for the panel's life writes the element's text, so a
    // re-render of the panel leaves no effect behind (see below).
    let timer = NodeRef::<leptos::html::Span>::new();
    effect(move || {
        now.track();
        let seconds = shown().and_then(|c| c.connected_seconds(js_sys::Date::now() as i64));
        if let (Some(element), Some(seconds)) = (timer.get(), seconds) {
            element.set_text_content(Some(&format_duration(seconds)));
        }
    });
    // The panel is rendered again at each change of the call, and every reactive closure inside
    // a re-rendered view leaves a dead subscriber on the long-lived signals it read (reactive_graph
    // 0.2 does not unsubscribe a dropped effect): over a day of calls that grew the wasm memory by
    // about 20 kB a call. So everything inside is read here, once per render, and rendered as
    // plain values; the inputs keep their text in signals written by their handlers only.
    move || {
        let lang = i18n.lang.get();
        let t = move |text: Text| text.in_lang(lang);
        let busy = agent.busy().get();
        let caller = caller.get();
        shown().map(|call| {
            let controls = agent.offer().with(|offer| offered_controls(&call, &offer.controls));
            let number = call
                .number
                .clone()
                .or_else(|| call.conversation_id.clone())
                .unwrap_or_default();
            // The caller's name once known (it may come after the panel shows), else the number.
            let (who, company, number_line) = match caller {
                Some(c) => (c.name, c.company, Some(number)),
                None => (number, None, None),
            };
            let ringing = call.state == CallState::Ringing;
            let state = call.state;
            let muted = call.muted;
            let kind = if state.is_over() {
                Text::LastCall
            } else {
                kind_text(&call)
            };
            let call_id = call.call_id;
            // Reads the clock itself: right from the first render (the effect above ticks it).
            let timer_text = call.connected_at_ms.map(|_| {
                format_duration(
                    call.connected_seconds(js_sys::Date::now() as i64)
                        .unwrap_or_default(),
                )
            });
            let buttons = controls
                .iter()
                .copied()
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
                            {t(control_text(control))}
                        </button>
                    }
                })
                .collect_view();
            let with_input = |control: CallControl, value: RwSignal<String>, label: Text, kind: &'static str| {
                controls.contains(&control).then(|| {
                    view! {
                        <div class=format!("control-field control-{}", control.as_str())>
                            <input
                                type=kind
                                aria-label=t(label)
                                placeholder=t(label)
                                value=value.get_untracked()
                                on:input=write_input(value)
                            />
                            <button
                                type="button"
                                class="button"
                                disabled=busy
                                on:click=on_click(move |_| run(call_id, control))
                            >
                                {t(control_text(control))}
                            </button>
                        </div>
                    }
                })
            };
            let tones = with_input(CallControl::Dtmf, digits, Text::Tones, "tel");
            let transfer = with_input(CallControl::Transfer, target, Text::TransferTo, "text");
            view! {
                <section
                    class="call-panel"
                    class:ringing=ringing
                    data-state=format!("{state:?}").to_ascii_lowercase()
                    aria-live="assertive"
                >
                    <p class="call-kind">{t(kind)}</p>
                    <p class="call-who">{who}</p>
                    <p class="call-company" hidden=company.is_none()>{company.clone()}</p>
                    <p class="call-number" hidden=number_line.is_none()>{number_line.clone()}</p>
                    <p class="call-state">
                        <span class="call-state-text">{t(state_text(state))}</span>
                        {timer_text.map(|text| view! {
                            <span class="call-timer" role="timer" aria-label=t(Text::CallTimer) node_ref=timer>{text}</span>
                        })}
                        <span class="call-muted" hidden=!muted>{t(Text::Muted)}</span>
                    </p>
                    <div class="call-controls">{buttons}</div>
                    {tones}
                    {transfer}
                </section>
            }
        })
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
