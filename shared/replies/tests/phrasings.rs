//! Invented phrasings (not from the corpus) for every intent and supported language, email and
//! voice, to keep the pattern rules general. The rules are one of the learned model's features;
//! these tests guard them alone (`classify_rules`). Reference date: Wednesday 2026-03-04 unless
//! stated.

use arflow_replies::{Date, Intent, Source, classify_rules as classify};
use jiff::civil::date;

use Intent::*;
use Source::{Email, Voice};

const REF: Date = date(2026, 3, 4);

#[track_caller]
fn check(cases: &[(Source, &str, Intent)]) {
    let mut failures = Vec::new();
    for &(source, text, expected) in cases {
        let got = classify(source, text, REF);
        if got.intent != expected {
            failures.push(format!("{text:?}: expected {expected}, got {} (evidence {:?})", got.intent, got.evidence));
        }
        if got.intent != PromiseToPay {
            assert_eq!(got.promised_date, None, "{text:?}");
        }
        if got.sure() {
            assert!(text.contains(&got.evidence), "evidence {:?} not in {text:?}", got.evidence);
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[track_caller]
fn check_dates(cases: &[(Source, &str, Option<Date>)]) {
    let mut failures = Vec::new();
    for &(source, text, expected) in cases {
        let got = classify(source, text, REF);
        if got.intent != PromiseToPay || got.promised_date != expected {
            failures.push(format!(
                "{text:?}: expected promise {expected:?}, got {} {:?} (evidence {:?})",
                got.intent, got.promised_date, got.evidence
            ));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn opt_out() {
    check(&[
        (Email, "Please stop emailing me.", OptOut),
        (Email, "UNSUBSCRIBE", OptOut),
        (Email, "Take us off your mailing list immediately.", OptOut),
        (Email, "I do not wish to receive any more of these reminders.", OptOut),
        (Email, "Kindly remove my address from your distribution list.", OptOut),
        (Email, "Enough with the automated emails. Opt me out.", OptOut),
        (Email, "We settled this in January. Quit sending us reminders!", OptOut),
        (Email, "Please don't contact me again about this invoice.", OptOut),
        (Email, "I'm reporting this as spam.", OptOut),
        (Email, "No more emails please, our accountant deals with this.", OptOut),
        (Email, "stop", OptOut),
        (Voice, "please stop calling this number", OptOut),
        (Voice, "take me off your call list", OptOut),
        (Voice, "don't ever call me again", OptOut),
        (Voice, "quit calling me every day", OptOut),
        (Email, "Merci de ne plus me contacter par e-mail.", OptOut),
        (Email, "Je souhaite me désabonner de ces relances.", OptOut),
        (Email, "Arrêtez de m'envoyer ces messages.", OptOut),
        (Email, "Bitte keine E-Mails mehr an diese Adresse.", OptOut),
        (Email, "Bitte kontaktieren Sie mich nicht mehr.", OptOut),
        (Email, "Ich möchte mich von diesen Erinnerungen abmelden.", OptOut),
        (Email, "Por favor, dejen de enviarme estos correos.", OptOut),
        (Email, "Quiero darme de baja de estos avisos.", OptOut),
        (Email, "Vi prego di non scrivermi più a questo indirizzo.", OptOut),
        (Email, "Smettete di chiamarmi, grazie.", OptOut),
        (Email, "Parem de me enviar essas cobranças automáticas.", OptOut),
        (Email, "Não me liguem mais, por favor.", OptOut),
        (Email, "Graag afmelden voor deze herinneringen.", OptOut),
        (Email, "Wilt u mij niet meer mailen?", OptOut),
        // A stop request wins over everything else.
        (Email, "The invoice is wrong and I want you to stop emailing me.", OptOut),
        (Email, "We'll pay Friday. Please unsubscribe me from the automated reminders.", OptOut),
    ]);
}

#[test]
fn not_opt_out() {
    check(&[
        (Email, "I don't want to unsubscribe, just send invoices to ap@northwind.example instead.", WrongContact),
        (Email, "No need to take me off the list - we'll pay next week.", PromiseToPay),
        (Email, "Please don't stop the reminders, they help us. Paying tomorrow.", PromiseToPay),
        (Email, "The invoice went to my spam folder, can you resend it?", Question),
    ]);
}

#[test]
fn dispute() {
    check(&[
        (Email, "This invoice is incorrect - we were quoted $4,000, not $5,200.", Dispute),
        (Email, "We dispute the charges for February; the work was never completed.", Dispute),
        (Email, "You've billed us twice for the same service.", Dispute),
        (Email, "The hours on this invoice are inflated. We only used 10 hours.", Dispute),
        (Email, "We never ordered the extra licences on this bill.", Dispute),
        (Email, "The product arrived damaged and we won't pay until it's replaced.", Dispute),
        (Email, "Please send a credit note for the cancelled session.", Dispute),
        (Email, "This isn't what we agreed. Please revise the invoice.", Dispute),
        (Email, "We're not paying for a meeting that never took place.", Dispute),
        (Email, "There's an error on this invoice: the discount is missing.", Dispute),
        (Voice, "yeah that amount's wrong we were told it'd be half that", Dispute),
        (Voice, "we never signed off on that work so we're not paying it", Dispute),
        (Email, "Nous contestons ce montant, il ne correspond pas au devis.", Dispute),
        (Email, "La facture est erronée : la prestation n'a jamais été réalisée.", Dispute),
        (Email, "Die Rechnung ist falsch, wir haben nur 10 Stunden beauftragt.", Dispute),
        (Email, "Wir widersprechen dieser Rechnung, die Leistung wurde nicht erbracht.", Dispute),
        (Email, "La factura es incorrecta, nos han cobrado dos veces.", Dispute),
        (Email, "No estamos de acuerdo con el importe facturado.", Dispute),
        (Email, "La fattura è sbagliata, l'importo non corrisponde al preventivo.", Dispute),
        (Email, "Contestiamo questa fattura: il servizio non è stato eseguito.", Dispute),
        (Email, "O valor da fatura está errado, foi cobrado em duplicidade.", Dispute),
        (Email, "De factuur klopt niet, wij betwisten dit bedrag.", Dispute),
        // Dispute wins over a promise for the undisputed part.
        (Email, "We'll pay the base fee Friday but the rush charge is wrong.", Dispute),
    ]);
}

#[test]
fn already_paid() {
    check(&[
        (Email, "We paid this on the 28th by bank transfer.", AlreadyPaid),
        (Email, "This has already been settled. Please check again.", AlreadyPaid),
        (Email, "Payment was sent via ACH on Monday, confirmation 88123.", AlreadyPaid),
        (Email, "Our cheque #2231 cleared your account last week.", AlreadyPaid),
        (Email, "I've attached the proof of payment.", AlreadyPaid),
        (Email, "Paid in full on Feb 27.", AlreadyPaid),
        (Email, "The invoice was paid through your portal yesterday.", AlreadyPaid),
        (Voice, "we already sent that payment out last friday", AlreadyPaid),
        (Voice, "yeah that's been paid already", AlreadyPaid),
        (Voice, "i paid it online this morning", AlreadyPaid),
        (Email, "La facture a déjà été réglée par virement le 2 mars.", AlreadyPaid),
        (Email, "Nous avons payé cette facture la semaine dernière.", AlreadyPaid),
        (Email, "Die Rechnung wurde bereits am 1. März überwiesen.", AlreadyPaid),
        (Email, "Wir haben den Betrag schon bezahlt.", AlreadyPaid),
        (Email, "Ya hemos pagado esta factura, adjunto el comprobante.", AlreadyPaid),
        (Email, "La fattura è già stata saldata con bonifico.", AlreadyPaid),
        (Email, "O pagamento já foi realizado na semana passada.", AlreadyPaid),
        (Email, "Deze factuur is al betaald op 2 maart.", AlreadyPaid),
    ]);
}

#[test]
fn not_already_paid() {
    check(&[
        (Email, "It hasn't been paid yet, it's with our manager for sign-off. I'll chase it.", Acknowledged),
        (Email, "It will be paid on the 20th.", PromiseToPay),
        (Email, "We haven't paid because we never got the invoice. Can you resend it?", Question),
        (Email, "Die Rechnung ist noch nicht bezahlt, wir überweisen nächste Woche.", PromiseToPay),
    ]);
}

#[test]
fn payment_plan() {
    check(&[
        (Email, "Could we set up a payment plan for this?", PaymentPlan),
        (Email, "Can we pay it off in three instalments?", PaymentPlan),
        (Email, "We can pay $500 now and the rest next month.", PaymentPlan),
        (Email, "Would it be possible to spread the balance over six months?", PaymentPlan),
        (Email, "We need a bit more time - cash flow is tight this quarter.", PaymentPlan),
        (Email, "Can we get an extension to the end of April?", PaymentPlan),
        (Email, "Could you give us another two weeks?", PaymentPlan),
        (Email, "We're struggling to pay our bills right now. Any flexibility?", PaymentPlan),
        (Email, "We can't pay the whole amount at once.", PaymentPlan),
        (Email, "Our company has filed for bankruptcy.", PaymentPlan),
        (Voice, "can we do like two hundred a month until it's paid off", PaymentPlan),
        (Voice, "things have been really tight can you hold off for a few weeks", PaymentPlan),
        (Email, "I'll pay half on the 10th and the other half on the 24th.", PaymentPlan),
        (Email, "Est-il possible de payer en trois fois ? Nous avons des difficultés de trésorerie.", PaymentPlan),
        (Email, "Pourriez-vous nous accorder un délai supplémentaire ?", PaymentPlan),
        (Email, "Können wir den Betrag in Raten zahlen?", PaymentPlan),
        (Email, "Wir bitten um einen Zahlungsaufschub von vier Wochen.", PaymentPlan),
        (Email, "¿Podemos pagarlo en tres cuotas? Tenemos problemas de liquidez.", PaymentPlan),
        (Email, "È possibile rateizzare l'importo in quattro rate mensili?", PaymentPlan),
        (Email, "Podemos parcelar o valor em três vezes?", PaymentPlan),
        (Email, "Kunnen we een betalingsregeling treffen?", PaymentPlan),
    ]);
}

#[test]
fn promise_to_pay() {
    check(&[
        (Email, "We'll get this paid by Friday.", PromiseToPay),
        (Email, "Payment will be released next week.", PromiseToPay),
        (Email, "I'll send the payment on Monday.", PromiseToPay),
        (Email, "It's approved; the transfer goes out tomorrow.", PromiseToPay),
        (Email, "We're paying this today.", PromiseToPay),
        (Email, "You'll have your money by the end of the month.", PromiseToPay),
        (Email, "Will settle the balance shortly.", PromiseToPay),
        (Voice, "yeah i'll pay that tomorrow", PromiseToPay),
        (Voice, "we're gonna cut you a check on the first", PromiseToPay),
        (Voice, "i'll take care of it this week", PromiseToPay),
        (Email, "Nous allons régler la facture demain.", PromiseToPay),
        (Email, "Le paiement sera effectué la semaine prochaine.", PromiseToPay),
        (Email, "Wir werden die Rechnung morgen bezahlen.", PromiseToPay),
        (Email, "Die Zahlung erfolgt am Freitag.", PromiseToPay),
        (Email, "Pagaremos la factura el viernes.", PromiseToPay),
        (Email, "Vamos a hacer la transferencia mañana.", PromiseToPay),
        (Email, "Provvederemo al pagamento entro fine mese.", PromiseToPay),
        (Email, "Il bonifico sarà effettuato domani.", PromiseToPay),
        (Email, "Vamos pagar amanhã sem falta.", PromiseToPay),
        (Email, "We betalen de factuur volgende week.", PromiseToPay),
        (Email, "De betaling wordt morgen overgemaakt.", PromiseToPay),
    ]);
}

#[test]
fn promise_dates() {
    // Reference: Wednesday 2026-03-04.
    check_dates(&[
        (Email, "We'll pay it tomorrow.", Some(date(2026, 3, 5))),
        (Email, "Payment goes out Friday.", Some(date(2026, 3, 6))),
        (Email, "We'll pay next Wednesday.", Some(date(2026, 3, 11))),
        (Email, "Will pay by the 20th.", Some(date(2026, 3, 20))),
        (Email, "We'll pay on the 2nd.", Some(date(2026, 4, 2))),
        (Email, "Will be paid by the end of the month.", Some(date(2026, 3, 31))),
        (Email, "We'll pay at the end of next month.", Some(date(2026, 4, 30))),
        (Email, "We'll pay next week.", Some(date(2026, 3, 13))),
        (Email, "We'll pay it this week.", Some(date(2026, 3, 6))),
        (Email, "Payment will be made in 7 days.", Some(date(2026, 3, 11))),
        (Email, "We'll pay within three weeks.", Some(date(2026, 3, 25))),
        (Email, "We'll pay on April 15.", Some(date(2026, 4, 15))),
        (Email, "We'll pay on 15 April.", Some(date(2026, 4, 15))),
        (Email, "We'll pay it on 2026-04-15.", Some(date(2026, 4, 15))),
        (Email, "We'll pay on February 20.", Some(date(2027, 2, 20))),
        (Email, "We'll pay it tonight.", Some(REF)),
        (Voice, "we'll pay on the twenty fifth", Some(date(2026, 3, 25))),
        (Voice, "i'll pay it in five days", Some(date(2026, 3, 9))),
        (Voice, "we'll send it monday", Some(date(2026, 3, 9))),
        (Email, "We'll pay soon.", None),
        (Email, "Nous paierons le 15.", Some(date(2026, 3, 15))),
        (Email, "Le virement partira fin du mois.", Some(date(2026, 3, 31))),
        (Email, "Wir überweisen am 12.", Some(date(2026, 3, 12))),
        (Email, "Die Überweisung erfolgt Ende des Monats.", Some(date(2026, 3, 31))),
        (Email, "Pagaremos el día 20.", Some(date(2026, 3, 20))),
        (Email, "Haremos la transferencia la semana que viene.", Some(date(2026, 3, 13))),
        (Email, "Il pagamento sarà effettuato venerdì.", Some(date(2026, 3, 6))),
        (Email, "O pagamento será feito no dia 10.", Some(date(2026, 3, 10))),
        (Email, "We betalen vrijdag.", Some(date(2026, 3, 6))),
        (Email, "Nous réglerons le 10/04.", Some(date(2026, 4, 10))),
        (Email, "We'll pay it on 4/10.", Some(date(2026, 4, 10))),
    ]);
}

#[test]
fn wrong_contact() {
    check(&[
        (Email, "I no longer work at Baxter Ltd. Please contact finance@baxter.example.", WrongContact),
        (Email, "You have the wrong person - I'm not involved with billing.", WrongContact),
        (Email, "Wrong email address, I don't know this company.", WrongContact),
        (Email, "Please direct invoices to our accounts payable team at ap@lumen.example.", WrongContact),
        (Email, "Jim retired last month; Carol handles payables now.", WrongContact),
        (Email, "I'm not the right contact for invoices, try our office manager.", WrongContact),
        (Voice, "sorry you've got the wrong number", WrongContact),
        (Voice, "he doesn't work here anymore", WrongContact),
        (Voice, "you'll need to speak to our accountant about that", WrongContact),
        (Email, "Je ne suis pas la bonne personne, merci de contacter notre comptable.", WrongContact),
        (Email, "Ich bin nicht mehr für die Buchhaltung zuständig.", WrongContact),
        (Email, "Herr Maier arbeitet nicht mehr bei uns.", WrongContact),
        (Email, "Se ha equivocado de persona, yo no llevo las facturas.", WrongContact),
        (Email, "Non lavoro più in questa azienda.", WrongContact),
        (Email, "Número errado, não conheço essa empresa.", WrongContact),
        (Email, "U heeft het verkeerde nummer, ik werk hier niet meer.", WrongContact),
    ]);
}

#[test]
fn question() {
    check(&[
        (Email, "Could you send me the invoice again as a PDF?", Question),
        (Email, "What is this charge for?", Question),
        (Email, "Who authorised this order on our side?", Question),
        (Email, "Can you provide a W-9 and your bank details?", Question),
        (Email, "We need the PO number before we can process it.", Question),
        (Email, "Please send an itemised statement.", Question),
        (Email, "Is VAT included in this total?", Question),
        (Voice, "what invoice is this about", Question),
        (Voice, "can you send me a copy", Question),
        (Voice, "who am i speaking with", Question),
        (Email, "Pouvez-vous m'envoyer une copie de la facture ?", Question),
        (Email, "Könnten Sie mir die Rechnung noch einmal schicken?", Question),
        (Email, "¿Me pueden reenviar la factura, por favor?", Question),
        (Email, "Potete inviarmi una copia della fattura?", Question),
        (Email, "Podem me enviar a segunda via do boleto?", Question),
        (Email, "Kunt u mij een kopie van de factuur sturen?", Question),
    ]);
}

#[test]
fn acknowledged() {
    check(&[
        (Email, "Thanks, I'll pass this on to accounts.", Acknowledged),
        (Email, "Got it, will look into it.", Acknowledged),
        (Email, "Noted, thanks.", Acknowledged),
        (Email, "I've forwarded this to our bookkeeper.", Acknowledged),
        (Email, "Thanks for letting me know, I'll check with finance.", Acknowledged),
        (Voice, "okay yeah i'll have a look", Acknowledged),
        (Voice, "alright thanks for calling", Acknowledged),
        (Email, "Merci, je transmets à la comptabilité.", Acknowledged),
        (Email, "Danke, ich leite das an die Buchhaltung weiter.", Acknowledged),
        (Email, "Gracias, lo reviso y le comento.", Acknowledged),
        (Email, "Ricevuto, grazie. Verifico con l'amministrazione.", Acknowledged),
        (Email, "Recebido, obrigado. Vou verificar.", Acknowledged),
        (Email, "Bedankt, ik kijk ernaar.", Acknowledged),
        (Email, "", Acknowledged),
    ]);
}

#[test]
fn auto_reply() {
    check(&[
        (Email, "I'm out of the office until March 10 with no access to email.", AutoReply),
        (Email, "Thank you for your email. I am on annual leave and will reply on my return.", AutoReply),
        (Email, "This is an automated message. Your ticket #4411 has been created.", AutoReply),
        (Email, "Your message has been received. A member of our team will get back to you shortly.", AutoReply),
        (Voice, "you have reached the office of dr patel please leave a message after the tone", AutoReply),
        (Voice, "the number you have dialed is not available", AutoReply),
        (Email, "Je suis absent du bureau jusqu'au 12 mars. Réponse automatique.", AutoReply),
        (Email, "Ich bin bis zum 15.03. nicht im Büro. Ihre Nachricht wird nicht weitergeleitet.", AutoReply),
        (Email, "Estoy fuera de la oficina hasta el lunes.", AutoReply),
        (Email, "Sono fuori ufficio fino al 10 marzo.", AutoReply),
        (Email, "Estou de férias até dia 15 com acesso limitado ao e-mail.", AutoReply),
        (Email, "Ik ben afwezig tot 10 maart. Dit is een automatisch antwoord.", AutoReply),
        // Out-of-office boilerplate that redirects is still an auto-reply.
        (
            Email,
            "I'm out of the office this week. For billing questions please contact accounts@acme.example.",
            AutoReply,
        ),
    ]);
}

#[test]
fn email_quotes_do_not_count() {
    let text = "Thanks, we'll pay on Friday.\n\nOn Mon, Mar 2, 2026 at 9:00 AM AR <ar@x.example> wrote:\n> Reply STOP to unsubscribe.\n> If you dispute this invoice, reply.";
    let got = classify(Email, text, REF);
    assert_eq!(got.intent, PromiseToPay);
    assert_eq!(got.promised_date, Some(date(2026, 3, 6)));
}

/// The table in tests/data/phrasings.tsv: `expected[@date]`, `e`/`v`, text.
#[test]
fn phrasing_table() {
    let mut failures = Vec::new();
    let mut n = 0;
    for line in include_str!("data/phrasings.tsv").lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut parts = line.splitn(3, '\t');
        let (Some(expected), Some(source), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("bad table line {line:?}");
        };
        let text = text.replace("\\n", "\n");
        let source = if source == "v" { Voice } else { Email };
        let (intent, date) = match expected.split_once('@') {
            Some((i, d)) => (i, Some(if d == "null" { None } else { Some(d.parse::<Date>().expect("date")) })),
            None => (expected, None),
        };
        let got = classify(source, &text, REF);
        n += 1;
        if got.intent.as_str() != intent || date.is_some_and(|d| d != got.promised_date) {
            failures.push(format!(
                "{expected}: got {} {:?} (evidence {:?}) :: {text:?}",
                got.intent, got.promised_date, got.evidence
            ));
        }
    }
    assert!(n > 250, "table has {n} lines");
    assert!(failures.is_empty(), "{} of {n} failures:\n{}", failures.len(), failures.join("\n"));
}
