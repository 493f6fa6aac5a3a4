use adapter_core::{
    host_protocol::{Customer, CustomerRef},
    phone::Country,
};
use leptos::prelude::*;

use crate::{
    components::on_click,
    dial,
    i18n::{dialling_for, phone_error, use_i18n, will_dial, Text},
};

const KEYS: [char; 13] = [
    '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#', '+',
];

/// The dial pad: the number to call, typed, pasted or filled by click-to-call, the exact E.164
/// number that will be dialled (or why it cannot be), the current customer's numbers, and Call.
#[component]
pub fn DialPad(
    /// What the dial pad holds.
    pad: RwSignal<dial::DialPad>,
    /// The country national numbers are read in.
    default_country: &'static Country,
    /// The customer the agent is looking at in the host, if any.
    #[prop(into)]
    customer: Signal<Option<Customer>>,
    /// Why Call cannot be used now; `None` enables it.
    #[prop(into)]
    call_blocked: Signal<Option<String>>,
    /// Called with the E.164 number and the conversation when the agent clicks Call.
    on_call: Callback<(String, Option<String>)>,
) -> impl IntoView {
    let i18n = use_i18n();
    let preview = move || pad.with(|p| p.preview(default_country));
    let preview_text = move || match preview() {
        None => String::new(),
        Some(Ok(number)) => will_dial(i18n.lang.get(), &number),
        Some(Err(error)) => phone_error(i18n.lang.get(), &error),
    };
    let preview_state = move || match preview() {
        None => "empty",
        Some(Ok(_)) => "valid",
        Some(Err(_)) => "invalid",
    };
    let for_whom = move || {
        pad.with(|p| p.customer.as_ref().and_then(|c| c.name.clone()))
            .map(|name| dialling_for(i18n.lang.get(), &name))
    };
    let customer_numbers = move || {
        customer.get().map(|customer| {
            let who = CustomerRef {
                id: customer.id.clone(),
                name: customer.name.clone(),
            };
            customer
                .phones
                .into_iter()
                .map(|entry| {
                    let who = who.clone();
                    let number = entry.phone.clone();
                    let label = match &entry.kind {
                        Some(kind) => format!("{} ({kind})", entry.phone),
                        None => entry.phone.clone(),
                    };
                    view! {
                        <li>
                            <button
                                type="button"
                                class="customer-number"
                                on:click=on_click(move |_| pad.update(|p| p.fill_number(&number, Some(who.clone()))))
                            >
                                {label}
                            </button>
                        </li>
                    }
                })
                .collect_view()
        })
    };
    let has_numbers = move || customer.with(|c| c.as_ref().is_some_and(|c| !c.phones.is_empty()));

    view! {
        <section class="dial-pad" aria-labelledby="dial-title">
            <label id="dial-title" class="dial-title" for="dial-input">
                {i18n.text(Text::DialPadTitle)}
            </label>
            <p class="dial-for" hidden=Signal::derive(move || for_whom().is_none())>{for_whom}</p>
            <input
                id="dial-input"
                class="dial-input"
                type="tel"
                inputmode="tel"
                autocomplete="off"
                maxlength=dial::MAX_CHARS.to_string()
                prop:value=move || pad.with(|p| p.text().to_owned())
                on:input=move |event| {
                    let text = event_target_value(&event);
                    pad.update(|p| p.set_text(&text));
                }
            />
            <output class="dial-preview" for="dial-input" aria-live="polite" data-state=Signal::derive(preview_state)>
                {preview_text}
            </output>
            <div class="keypad" role="group" aria-label=i18n.text(Text::Keypad)>
                {KEYS
                    .into_iter()
                    .map(|key| {
                        view! {
                            <button type="button" class="key" on:click=on_click(move |_| pad.update(|p| p.press(key)))>
                                {key.to_string()}
                            </button>
                        }
                    })
                    .collect_view()}
                <button
                    type="button"
                    class="key key-backspace"
                    aria-label=i18n.text(Text::Backspace)
                    title=i18n.text(Text::Backspace)
                    on:click=on_click(move |_| pad.update(dial::DialPad::backspace))
                >
                    <span aria-hidden="true">"⌫"</span>
                </button>
            </div>
            <div class="dial-actions">
                <button
                    type="button"
                    class="button clear-number"
                    on:click=on_click(move |_| pad.update(dial::DialPad::clear))
                >
                    {i18n.text(Text::ClearNumber)}
                </button>
                <button
                    type="button"
                    class="button call"
                    disabled=Signal::derive(move || call_blocked.with(Option::is_some) || preview_state() != "valid")
                    aria-describedby="call-blocked"
                    on:click=on_click(move |_| {
                        if let Some(Ok(number)) = preview() {
                            on_call.run((number.e164, pad.with_untracked(|p| p.conversation_id.clone())));
                        }
                    })
                >
                    {i18n.text(Text::Call)}
                </button>
            </div>
            <p id="call-blocked" class="call-blocked" hidden=Signal::derive(move || call_blocked.with(Option::is_none))>
                {call_blocked}
            </p>
            <div class="customer-numbers" hidden=Signal::derive(move || !has_numbers())>
                <h2 class="section-title">{i18n.text(Text::CustomerNumbers)}</h2>
                <ul>{customer_numbers}</ul>
            </div>
        </section>
    }
}
