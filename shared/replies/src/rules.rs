//! The rules: for each intent, phrasings in English, French, German, Spanish, Italian, Portuguese
//! and Dutch, written against the normalised text (lower case, accents folded, typos fixed).
//! Intents are tried in precedence order; the first rule that matches (and is not negated or
//! vetoed by its context) decides.

use std::sync::LazyLock;

use jiff::civil::Date;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::normalize::Normalized;
use crate::{Classification, Intent, dates, lang};

/// Negated by a negation just before the match ("not", "don't want to", "no need to", "pas",
/// "nicht", ...) or right after it in languages that negate after the verb ("nicht", "pas", "niet").
const N: u8 = 1;
/// Negated by a negation inside the match ("it has not been paid").
const I: u8 = 2;
/// Weak: does not count inside an auto-reply (an out-of-office "please contact our accounts team").
const W: u8 = 4;
/// Does not count in a sentence that is a question ("what payment reference should we use?").
const Q: u8 = 8;
/// Does not count in a future or conditional context ("will be paid on the 20th").
const F: u8 = 16;

struct Spec {
    intent: Intent,
    flags: u8,
    pattern: &'static str,
    /// Rejects the match when the text before it (same clause) matches (anchor with `$`).
    before_veto: &'static str,
    /// Rejects the match when the text after it matches (anchor with `^`).
    after_veto: &'static str,
    /// The text after the match must match (anchor with `^`).
    after_req: &'static str,
    /// Rejects the match when the matched text itself matches.
    match_veto: &'static str,
    /// Written for a language other than English: skipped on clearly English text.
    foreign: bool,
}

const fn rule(intent: Intent, flags: u8, pattern: &'static str) -> Spec {
    Spec { intent, flags, pattern, before_veto: "", after_veto: "", after_req: "", match_veto: "", foreign: false }
}

impl Spec {
    const fn before_veto(mut self, v: &'static str) -> Self {
        self.before_veto = v;
        self
    }
    const fn after_veto(mut self, v: &'static str) -> Self {
        self.after_veto = v;
        self
    }
    const fn after_req(mut self, v: &'static str) -> Self {
        self.after_req = v;
        self
    }
    const fn match_veto(mut self, v: &'static str) -> Self {
        self.match_veto = v;
        self
    }
    const fn foreign(mut self) -> Self {
        self.foreign = true;
        self
    }
}

use Intent::{
    Acknowledged as ACK, AlreadyPaid as PAID, AutoReply as AUTO, Dispute as DISPUTE, OptOut as OPT,
    PaymentPlan as PLAN, PromiseToPay as PROMISE, Question as QUESTION, WrongContact as WRONG,
};

/// Fragments substituted into patterns.
const FRAGMENTS: &[(&str, &str)] = &[
    (
        "{MONEY}",
        r"(?:(?:\$|\xc2\xa3|\xe2\x82\xac|usd|eur|gbp|ca\$|a\$)\s?\d[\d,.]*k?|\d[\d,.]*\s?(?:k|dollars|euros?|pounds|bucks|eur|usd|gbp|\$|\xe2\x82\xac|\xc2\xa3)|(?:one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|fifty|a)\s+(?:hundred|thousand|grand)|(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|a\s+hundred|hundred)\s+(?:dollars|euros|pounds|bucks|quid))",
    ),
    (
        "{MONTHS}",
        r"(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)",
    ),
    ("{WEEKDAY}", r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"),
    (
        "{ROLEMAIL}",
        r"(?:ap|a\.p|accounts|accountspayable|accounts-payable|accounts\.payable|acctspayable|payables?|finance|billing|invoices?|invoicing|ar|bills|accounting|bookkeeping|admin|office|facturas|facturacion|facturation|factures|compta|comptabilite|buchhaltung|rechnungen|rechnungswesen|kreditoren|finanzen|financeiro|contabilidade|contas|amministrazione|contabilita|fatture|administratie|boekhouding|facturen|crediteuren|ap-[a-z]+|ap\.[a-z]+)[a-z0-9._-]*@[a-z0-9.-]+\.[a-z]{2,}",
    ),
    ("{EMAIL}", r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"),
    (
        "{DOCS}",
        r"(?:w-?9|w\s?nine|po\b|p\.?\s?o\.?\s+number|purchase\s+order|form|copy|e-?mail|message|note|question|reply|answer|confirmation|details|document\w*|info\w*|update|statement|quote|request|complaint|ticket|query|feedback|contract|list|invoice|receipt|breakdown|voicemail|text)",
    ),
];

// Runs of characters inside a sentence are written `[^.!?\n]*`, never `{0,N}`: a counted
// repetition makes the one-pass automaton over all rules track every position and run 2x slower.
#[rustfmt::skip]
static SPECS: &[Spec] = &[
    // ───────────────────────────── opt_out ─────────────────────────────
    rule(OPT, N, r"\bun-?subscri\w*|\bunsub\b|\bopt(?:ing|ed)?[\s-]?out\b|\bopt\s+(?:me|us)\s+out\b"),
    rule(OPT, 0, r"\b(?:will|'ll|going\s+to|from\s+now\s+on)\b[^.!?\n]*\b(?:spam|junk)\b|\b(?:spam|junk)\b[^.!?\n]*\bfrom\s+now\s+on|\b(?:blocked|blocking|block)\s+(?:your|this|these)\s+(?:e-?mails?|numbers?|address|domain|company|calls|messages)|\bopt\s+(?:\S+\s+){1,3}?out\b"),
    rule(OPT, 0, r"\b(?:do\s+not|don't|never|please\s+don't|please\s+do\s+not)\s+(?:ever\s+|even\s+)?(?:\w+\s+)?(?:contact|call|ring|phone|email|e-mail|text|message|write\s+to|bother|harass|spam)(?:ing)?\s+(?:me|us|this|my|our|him|her|them|again|anymore|any\s+more|here|at|about|back)\b"),
    rule(OPT, 0, r"\b(?:do\s+not|don't|never)\s+(?:\w+\s+)?(?:send|mail|email)\s+(?:me\s+|us\s+)?(?:any\s+)?(?:more|further|these|those|such|automated|another|other)\b"),
    rule(OPT, N, r"\b(?:stop|quit|cease|halt)\s+(?:\S+\s+){0,3}?(?:e-?mail|mail|messag|text|sms|call|contact|send|remind|notif|notice|harass|spam|bother|ring|phon|chas|letter|dunning|robocall|automat|pester|hound|communicat|correspond|outreach)\w*")
        .after_veto(r"^[^.!?\n]*?(?:{EMAIL}|\b(?:our|the)\s+(?:ap|a/p|accounts|finance|billing|bookkeeper|accountant|payables)\b)"),
    rule(OPT, 0, r"^\W*(?:stop|stopp|stop\s+all|stop\s+it|stop\s+please|please\s+stop|stop\s+now|unsubscribe(?:\s+me)?|remove(?:\s+me)?|opt\s*-?\s*out|spam|end|quit|cancel|baja|sair|arret|arreter|stoppen|abmelden|annulla|cancelar|cancella|afmelden)\W*$"),
    rule(OPT, 0, r"(?:^|[.!?\n]\s*)(?:please\s+)?stop(?:\s+(?:it|this|now|please|all\s+of\s+this|already))?\s*(?:[.!]+|$)"),
    rule(OPT, N, r"\b(?:take|remove|delete|drop|strike|scratch|erase|unlist|get)\s+(?:me|us|myself|my\s+(?:\w+\s+)?(?:number|email|e-mail|address|name|details|info|data|contact)|this\s+(?:number|email|e-mail|address|phone\s+number|line)|our\s+(?:number|email|address|details)|{EMAIL}|this\s+(?:mailbox|inbox))\s+(?:off|from|out\s+of)\s+(?:\S+\s+){0,3}?(?:list|lists|database|system|records|mailing|distribution|register|file|calls|contact|reminders|emails|e-mails|messages|automated|dialer|rotation|campaign|sequence|notifications)"),
    rule(OPT, N, r"\b(?:take|remove|delete)\s+(?:me|us)\s+off\b|\bremove\s+(?:me|us)\s*(?:please|now|asap|immediately)?\s*[.!]*\s*$"),
    rule(OPT, 0, r"\b(?:do\s+not|don't|never)\s+(?:\w+\s+)?(?:send|mail|email)\s+(?:me\s+|us\s+)?(?:any\s+)?(?:\w+\s+)?(?:reminders|e-?mails|messages|notices|notifications|texts|letters)\s+(?:to\s+(?:this|my|our)\s+\w+\s+)?(?:any\s?more|again|from\s+now\s+on)\b"),
    rule(OPT, 0, r"\b(?:would|'d)\s+(?:rather|prefer)\s+not\s+(?:to\s+)?(?:receive|get|be\s+(?:contacted|called|emailed|e-mailed|chased))\b|\benough\s+(?:with|of)\s+(?:the|these|your|those|all\s+the)\s+(?:\w+\s+)?(?:reminders|e-?mails|calls|messages|texts|notices|notifications)\b"),
    rule(OPT, 0, r"\b(?:do\s+not|don't|no\s+longer)\s+consent\s+to\s+(?:being\s+|be\s+)?(?:contact|call|e-?mail|text|messag|phon)\w*|\b(?:can|could|would)\s+you\s+(?:please\s+)?not\s+(?:contact|call|ring|phone|e-?mail|text|message)\s+(?:me|us)\b"),
    rule(OPT, 0, r"\brefrain\s+from\s+(?:contacting|calling|e-?mailing|messaging|sending|writing|phoning)"),
    rule(OPT, N, r"\bcancel\s+(?:these|the|all|your|my|those)\s+(?:\w+\s+)?(?:reminders|e-?mails|notifications|notices|messages|calls|alerts|texts)\b|\b(?:want|need|would\s+like)\s+(?:these|the|your|all|this|those)\s+(?:\w+\s+)?(?:e-?mails|reminders|calls|messages|notices|notifications|texts)\s+to\s+(?:stop|end|cease)\b|\b(?:these|the|your)\s+(?:\w+\s+)?(?:e-?mails|reminders|calls|messages|notices|texts)\s+(?:need\s+to|have\s+to|must|got\s+to)\s+stop\b"),
    rule(OPT, N, r"\b(?:remove|delete|erase)\s+(?:this|my|our)\s+(?:phone\s+|cell\s+|mobile\s+|e-?mail\s+)?(?:number|e-?mail|address|line|contact\s+details)\b"),
    rule(OPT, N, r"\b(?:be|get|been|being)\s+(?:removed|taken\s+off|deleted|unsubscribed|dropped|struck\s+off)\s+(?:from|off)\b|\b(?:be|get|been|being)\s+taken\s+off\s+(?:\S+\s+){0,3}?(?:list|lists|reminders|e-?mails|calls|messages|notifications|mailing|distribution|system|database)\b|\bwant\s+(?:off|out\s+of)\s+(?:this|your|the)\s+(?:\w+\s+)?list"),
    rule(OPT, 0, r"\b(?:this\s+is|it's|its|this\s+was|that's|pure|total|more|obvious|reported\s+(?:as|this\s+as|it\s+as|you\s+(?:as|for))|report(?:ing)?\s+(?:this\s+|it\s+|you\s+)?(?:as|for)|mark(?:ed|ing)?\s+(?:this\s+|it\s+|you\s+)?(?:as\s+)?|flag(?:ged|ging)?\s+(?:this\s+|it\s+)?as)\s*spam\b|\bspam(?:ming)?\s+(?:me|us)\b|^\W*spam\W*$"),
    rule(OPT, 0, r"\bharass\w*|\bharcel\w*|\bbelastig\w*|\bbelaestig\w*|\bacoso\b|\bintimidat\w*"),
    rule(OPT, 0, r"\bdo[\s-]not[\s-]call\b|\bdnc\s+list\b|\bno[\s-]call\s+list"),
    rule(OPT, 0, r"\b(?:don't|do\s+not|no\s+longer)\s+(?:want|wish|need|care)\s+to\s+(?:receive|get|be\s+(?:contacted|called|emailed|bothered|chased))|\b(?:don't|do\s+not)\s+want\s+(?:any\s+)?(?:more|further|these|your|this|those|automated)\s+(?:\w+\s+)?(?:e-?mails?|messages?|reminders?|calls?|notices?|notifications?|texts?|letters?|contact)"),
    rule(OPT, 0, r"\b(?:turn|switch|shut)\s+off\s+(?:\S+\s+){0,3}?(?:remind|e-?mail|messag|notif|call|alert|notice|automat)|\b(?:turn|switch|shut)\s+(?:these|the|your|those|this|it|them)\s+(?:\S+\s+){0,2}?off\b"),
    rule(OPT, 0, r"\bno\s+(?:more|further)\s+(?:of\s+(?:these|those|your|the|this)\s+)?(?:\w+\s+)?(?:e-?mails?|calls?|messages?|reminders?|texts?|contact|notices?|letters?|harassment)\b"),
    rule(OPT, 0, r"\bleave\s+(?:me|us)\s+alone\b|\blose\s+(?:my|this|our)\s+(?:number|email|e-mail|address)|\b(?:withdraw|revoke)\w*\s+(?:my\s+|our\s+)?consent|\b(?:delete|erase)\s+(?:all\s+)?(?:my|our)\s+(?:personal\s+|contact\s+)?(?:data|details|information|info)"),
    // French
    rule(OPT, N, r"\bdes-?abonn\w*|\bdesinscri\w*").foreign(),
    rule(OPT, 0, r"\bstop\s+(?:aux|a|a\s+ces|den|mit|de|alle|con|agli|as|com)\s+(?:\w+\s+)?(?:relances|mails|e-?mails|appels|messages|anrufe|erinnerungen|mahnungen|correos|llamadas|solleciti|chiamate|cobrancas|ligacoes|herinneringen|mailtjes)\b").foreign(),
    rule(OPT, 0, r"\bne\s+(?:me|m'|nous)\s*(?:\w+\s+)?(?:contact|appel|ecri|relanc|envoy|solicit|sollicit|harcel|telephon|derang)\w*\s+plus\b|\bne\s+plus\s+(?:me\s+|m'|nous\s+)?(?:\w+\s+)?(?:contact|appel|ecri|relanc|envoy|recevoir|solicit|sollicit|harcel|telephon|derang)|\bne\s+(?:veux|voulons|souhaite|souhaitons|desire|desirons)\s+plus\s+(?:\w+\s+)?(?:recevoir|etre\s+(?:contacte|appele|relance|sollicite))").foreign(),
    rule(OPT, 0, r"\b(?:arret|cess)(?:ez|er|e)\s+(?:de\s+|d')?(?:m'|me\s+|nous\s+)?(?:envoy|appel|contact|ecri|relanc|harcel|telephon|spam)\w*|\b(?:arret|cess)(?:ez|er)\s+(?:les|vos|ces)\s+(?:\w+\s+)?(?:relances|mails|e-?mails|courriels|appels|messages|sms|rappels)").foreign(),
    rule(OPT, 0, r"\b(?:retir|supprim|enlev|radi|effac)\w*\s+(?:\S+\s+){0,4}?(?:de|des|du)\s+(?:votre|vos|la|cette|ces|tous\s+vos)\s+(?:\w+\s+)?(?:liste|listes|fichier|fichiers|base|diffusion|mailing)|\bplus\s+(?:de|d')\s+(?:\w+\s+)?(?:relances|mails|e-?mails|courriels|appels|messages|sms|rappels)\b|\bc'est\s+du\s+spam|\bpourriel").foreign(),
    // German
    rule(OPT, N, r"\babmeld\w*|\babbestell\w*|\babgemeldet|\baustragen|\bausgetragen|\btragen\s+sie\s+(?:mich|uns)\s+(?:\S+\s+){0,4}?aus\b").foreign(),
    rule(OPT, 0, r"\bkeine\s+weiteren\s+(?:\S+\s+){0,2}?(?:e-?mails?|mails?|anrufe|erinnerungen|zahlungserinnerungen|nachrichten|mahnungen|sms|kontaktaufnahmen?)\b|\bkeine\s+(?:\S+\s+){0,2}?(?:e-?mails?|mails?|anrufe|erinnerungen|zahlungserinnerungen|nachrichten|mahnungen|sms|kontaktaufnahmen?|werbung)\s+mehr\b|\bbitte\s+keine\s+(?:\S+\s+){0,2}?(?:e-?mails?|mails?|anrufe|erinnerungen|zahlungserinnerungen|nachrichten|mahnungen|sms)").foreign(),
    rule(OPT, 0, r"\bnicht\s+mehr\s+(?:\S+\s+){0,3}?(?:kontaktier|anruf|anzuruf|anschreib|schreib|mail|belastig|zusend|zuzusend|send|erinner|stor|angerufen|kontaktiert|angeschrieben)\w*|\b(?:kontaktieren|rufen|schreiben|mailen|senden|schicken)\s+sie\s+(?:mich|uns|mir)\s+(?:\S+\s+){0,3}?nicht\s+mehr|\bh(?:o|oe)r(?:en|t)\s+sie\s+(?:bitte\s+)?(?:endlich\s+)?auf\b|\bunterlassen\s+sie|\b(?:entfernen|loschen|streichen)\s+sie\s+(?:mich|uns|meine\s+\w+)|\baus\s+(?:ihrem|ihrer|dem|der|diesem)\s+(?:\w+\s+)?(?:verteiler|mailingliste|e-?mail-?liste|newsletter|datenbank)").foreign(),
    // Spanish
    rule(OPT, 0, r"\bno\s+(?:me|nos)\s+(?:vuelvan\s+a\s+|sigan\s+|vuelva\s+a\s+)?(?:contacten|contacte|contactes|llamen|llame|llames|escriban|escriba|envien|manden|molesten|moleste|contactar|llamar|escribir|molestar)\b|\bdej(?:en|e|ar|a)\s+de\s+(?:\S+\s+)?(?:llam|envi|escrib|contact|molest|mand|acos)\w*|\b(?:dar(?:me|nos)?|den(?:me|nos)?|darse)\s+de\s+baja\b|\bde\s+baja\b|\bno\s+(?:quiero|queremos|deseo|deseamos)\s+(?:seguir\s+)?recibir|\bno\s+(?:quiero|queremos|deseo|deseamos)\s+(?:mas|ningun\w*)\s+(?:\w+\s+)?(?:correos|mensajes|llamadas|recordatorios|emails)|\b(?:elimin|sac|borr|quit|retir)\w*\s+(?:\S+\s+){0,3}?(?:de\s+)?(?:su|sus|la|vuestra|esta|esa)\s+(?:\w+\s+)?(?:lista|base\s+de\s+datos|listado)").foreign(),
    // Italian
    rule(OPT, 0, r"\bnon\s+(?:mi\s+|ci\s+)?(?:contatt|chiam|scriv|invi|mand|disturb|telefon|sollecit)\w*\s+(?:\S+\s+){0,2}?piu\b|\bnon\s+(?:contattarmi|chiamarmi|scrivermi|contattarci|chiamarci|scriverci|inviarmi|mandarmi|disturbarmi|inviateci|inviatemi|mandatemi|sollecitarmi)\w*|\bsmett\w*\s+di\s+(?:\S+\s+)?(?:contatt|chiam|scriv|invi|mand|disturb|telefon|sollecit)|\b(?:cancell|rimuov|togl|elimin|levat)\w*\s+(?:\S+\s+){0,3}?(?:dalla|dalle|dal|dai|da)\s+(?:vostra\s+|sua\s+|questa\s+)?(?:\w+\s+)?(?:lista|mailing|elenco|newsletter|invii|database|rubrica)|\bdisiscriv\w*|\bcancellatemi\b|\bbasta\s+(?:con\s+)?(?:questi|queste|i|le|tutti\s+questi|tutte\s+queste)\s+(?:\w+\s+)?(?:messaggi|email|e-mail|mail|solleciti|chiamate|telefonate|promemoria)\b|\bannulla\w*\s+(?:l'|la\s+)?iscrizione|\bnon\s+(?:voglio|vogliamo|desidero|desideriamo)\s+piu\s+(?:\w+\s+)?(?:ricevere|essere)").foreign(),
    // Portuguese
    rule(OPT, 0, r"\bnao\s+(?:me|nos)\s+(?:\S+\s+)?(?:contat|contact|lig|envi|mand|escrev|incomod|perturb|cobr)\w*\s+(?:\S+\s+){0,2}?mais\b|\bpar(?:em|e|ar)\s+de\s+(?:me\s+|nos\s+)?(?:lig|envi|mand|escrev|contat|contact|incomod|cobr)\w*|\bdescadastr\w*|\b(?:remov|tir|exclu|retir)\w*\s+(?:\S+\s+){0,3}?(?:da|de|do|dos|das)\s+(?:sua\s+|vossa\s+|esta\s+)?(?:\w+\s+)?(?:lista|cadastro|mailing)|\bnao\s+(?:quero|queremos|desejo|desejamos)\s+(?:mais\s+)?receber|\bnao\s+quero\s+mais\s+(?:\w+\s+)?(?:e-?mails|mensagens|ligacoes|lembretes)").foreign(),
    // Dutch
    rule(OPT, 0, r"\bafmeld\w*|\bafgemeld|\buitschrijv\w*|\buitgeschreven|\bniet\s+meer\s+(?:\S+\s+){0,2}?(?:bell|mail|e-mail|contact|stur|benader|lastig|gebeld|gemaild)\w*|\bstop\s+met\s+(?:\S+\s+)?(?:bell|mail|stur|contact|e-mail|herinner)\w*|\bgeen\s+(?:\S+\s+){0,2}?(?:e-?mails?|mails|berichten|herinneringen|telefoontjes|oproepen|aanmaningen)\s+meer|\bhaal\s+(?:mij|me|ons)\s+(?:\S+\s+){0,3}?(?:lijst|bestand|mailinglijst)|\b(?:verwijder|schrap)\w*\s+(?:mij|me|ons|mijn\s+\S+)\s+(?:\S+\s+){0,3}?(?:lijst|bestand|mailinglijst|systeem)").foreign(),

    // ───────────────────────────── dispute ─────────────────────────────
    rule(DISPUTE, N, r"\bdisput\w*|\bcontest\w*|\bdisagree\w*|\bchalleng(?:e|ing)\s+(?:this|the)\s+(?:invoice|charge|bill)"),
    rule(DISPUTE, 0, r"\b(?:amount|invoice|bill|charge|charges|rate|total|price|pricing|figure|fee|fees|hours|quantity|vat|tax|sum|calculation|count|line|billing|balance|number\s+of\s+\w+)(?:'s\s+|\s+(?:\S+\s+){0,4}?(?:is|are|was|were|seems?|looks?|appears?)\s+)(?:\w+\s+)?(?:wrong|incorrect|too\s+high|not\s+(?:right|correct|accurate)|off|inaccurate|inflated|overstated|excessive|a\s+mistake|an?\s+error|mistaken|double|duplicated?|higher\s+than)\b"),
    rule(DISPUTE, 0, r"\b(?:this|that|it)(?:\s+(?:is|was|seems|looks)|'s)\s+(?:\w+\s+)?(?:wrong|incorrect|not\s+(?:right|correct)|a\s+mistake|an\s+error|inaccurate|overbilled|overcharged)\b")
        .after_veto(r"^\s*(?:number|person|contact|address|email|e-mail|company|guy|department|one|people|individual)\b"),
    rule(DISPUTE, N, r"\b(?:wrong|incorrect|inflated|excessive|inaccurate|erroneous|duplicate|duplicated|double|unauthori[sz]ed|fraudulent|bogus|unapproved|unjustified)\s+(?:\w+\s+)?(?:amount|invoice|rate|total|price|charge|charges|figure|fee|fees|hours|quantity|sum|billing|bill|line|item|entry|transaction|vat|tax|debit)\b"),
    rule(DISPUTE, N, r"\bover-?charg\w*|\bover-?bill\w*|\bdouble[\s-]?(?:charg|bill|invoic)\w*|\b(?:charged|billed|invoiced)\s+(?:us\s+|me\s+)?(?:\S+\s+){0,3}?(?:twice|two\s+times|double|for\s+the\s+same|again\s+for)|\b(?:applied|added|included|counted)\s+twice\b|\btwice\s+for\b"),
    rule(DISPUTE, N | Q, r"\b(?:is|looks\s+like|seems\s+(?:like|to\s+be)|appears\s+to\s+be|it's|that's|this's)\s+(?:a|an)\s+(?:\w+\s+)?duplicat(?:e|ion)\b"),
    rule(DISPUTE, N | Q, r"\bduplicat(?:e|ed|ion)\b").after_veto(r"^\s*(?:copy|of\s+the\s+invoice|invoice\s+copy)"),
    rule(DISPUTE, N, r"\b(?:billing|invoicing|invoice|accounting|pricing)\s+(?:error|mistake|discrepanc\w*|problem)|\b(?:error|mistake|discrepanc\w*|inaccurac\w*)\s+(?:on|in|with)\s+(?:the|this|your|that|our)\s+(?:\w+\s+)?(?:invoice|bill|statement|charge|billing|amount)"),
    rule(DISPUTE, 0, r"\bunauthori[sz]ed\b|\b(?:didn't|did\s+not|never)\s+(?:\w+\s+)?authori[sz]e"),
    rule(DISPUTE, 0, r"\bnever\s+(?:\w+\s+)?(?:approved|agreed|ordered|signed|requested|asked\s+for|used|authori[sz]ed|took\s+place|happened|occurred|showed|turned\s+up|delivered|completed|finished|done|performed|contracted|hired|engaged|booked|had|received|got|rendered|provided|started|commissioned|accepted|sanctioned|initiated)\b")
        .after_veto(r"^\s*(?:the|your|an|any|a|this|that|our|my)?\s*(?:invoice|bill|email|e-mail|statement|copy|reminder|message|notice|link|pdf|attachment|w-?9|receipt|original|letter|paperwork|call|voicemail|it|them|issue|problem|complaint|any\s+issue|a\s+problem)\b"),
    rule(DISPUTE, 0, r"\b(?:was|were|is|are|has|have|had)(?:n't|\s+not)\s+(?:yet\s+|even\s+|been\s+|ever\s+|fully\s+|actually\s+)*(?:approved|agreed|authori[sz]ed|ordered|requested|delivered|completed|finished|done|performed|rendered|provided|installed|fixed|resolved|carried\s+out|started|signed\s+off|working)\b")
        .before_veto(r"(?:invoice|bill|payment|it|this|that|po|purchase\s+order|check|cheque|transfer)\s*$"),
    rule(DISPUTE, 0, r"\bnot\s+what\s+(?:we|i)\s+(?:\w+\s+){0,2}?(?:agreed|ordered|signed|asked|quoted|discussed|contracted|expected|approved|requested|wanted|paid\s+for|were\s+(?:quoted|promised|told))|\b(?:is|are|was|were)(?:n't|\s+not)\s+what\s+(?:we|i)\s+(?:\w+\s+){0,2}?(?:agreed|ordered|signed|asked|quoted|discussed|contracted|expected|approved|requested|wanted)"),
    rule(DISPUTE, 0, r"\b(?:we|i)\s+(?:had\s+|have\s+)?(?:only\s+)?agreed\s+(?:to\s+|on\s+|upon\s+)?(?:a\s+|an\s+|the\s+)?(?:fixed|flat|price|fee|rate|quote|cap|budget|total|discount|maximum|max|ceiling|lump|\$|\xc2\xa3|\xe2\x82\xac|\d)"),
    rule(DISPUTE, 0, r"\b(?:quote|quotation|contract|agreement|msa|sow|estimate|engagement\s+letter|proposal|terms|purchase\s+order)\s+(?:\S+\s+){0,2}?(?:says|said|states|stated|specif\w+|clearly|caps?|was\s+(?:for\s+)?(?:only\s+)?(?:\$|\xc2\xa3|\xe2\x82\xac|\d)|doesn't\s+(?:allow|include|cover|permit)|does\s+not\s+(?:allow|include|cover|permit)|didn't\s+include|allows?\s+(?:no|only))"),
    rule(DISPUTE, 0, r"\bdo(?:es)?(?:n't|\s+not)\s+match\b|\bdoesn't\s+(?:reflect|correspond)|\bmismatch"),
    rule(DISPUTE, 0, r"\b(?:please|pls|kindly)\s+(?:\w+\s+)?(?:correct|fix|amend|revise|adjust|void|credit|rectify|remove|waive|reverse|refund)\b")
        .after_veto(r"^\s*(?:me|us|him|her|them|myself|(?:my|this|our)\s+(?:name|e-?mail|number|details|address|phone|line)|\w+\s+from\s+(?:this|the|your)\s+(?:thread|e-?mail|chain|list|cc|loop|conversation|distribution|mailing))"),
    rule(DISPUTE, N, r"\b(?:corrected|revised|amended|adjusted)\s+(?:\w+\s+)?invoice\b|\bcredit\s+(?:note|memo)\b|\brefund\w*|\breimburse\w*").before_veto(r"(?:tax|vat|insurance|grant|waiting\s+(?:on|for)\s+(?:a|the|our|my)?\s*(?:\w+\s+)?)\s*$"),
    // Paying only once the invoice is put right says it is wrong.
    rule(DISPUTE, 0, r"\b(?:once|when|after|as\s+soon\s+as)\s+(?:(?:it(?:'s|\s+is|\s+has\s+been)|(?:the|your)\s+(?:invoice|bill|amount|error|mistake)\s+(?:is|has\s+been))\s+)?(?:corrected|fixed|amended|revised)\b|\b(?:once|when|after|as\s+soon\s+as)\s+you(?:'ve|\s+have)?\s+(?:correct|fix|amend|revise)(?:ed)?\s+(?:it|the|this|that)\b")
        .after_veto(r"^\s*(?:\w+\s+)?(?:link|portal|website|site|page|button|url|address|e-?mail|attachment|pdf)\b"),
    rule(DISPUTE, N | Q, r"\bre-?issue\b|\bre-?bill\b"),
    rule(DISPUTE, 0, r"\bremove\s+(?:the|those|that|this|these|all)\s+(?:\S+\s+){0,3}?(?:hours|charges?|lines?|fees?|items?|costs?|amounts?|entries|entry|expenses?|surcharge|travel)"),
    rule(DISPUTE, N | Q, r"\blate\s+(?:fees?|charges?|penalt\w*|payment\s+fees?)|\b(?:interest|penalty)\s+(?:charge|fee)s?"),
    rule(DISPUTE, N, r"\b(?:(?:are|am|is|were|'re|'m)\s+not|won't|will\s+not|refus\w*\s+to|not\s+going\s+to|not\s+comfortable|not\s+prepared\s+to|not\s+willing\s+to|unwilling\s+to|shouldn't\s+have\s+to|should\s+not\s+have\s+to|decline\s+to)\s+(?:be\s+)?(?:pay(?:ing)?|approv(?:e|ing))\b")
        .after_veto(r"^\s*(?:\S+\s+){0,2}?(?:until|till|before)\s+(?:next|the\s+end|end|mid|early|late|[a-z]+day|\d|january|february|march|april|may|june|july|august|september|october|november|december|we\s+(?:get|receive)\s+(?:paid|funds|the\s+(?:grant|loan|funds|money|payment)))"),
    rule(DISPUTE, 0, r"\b(?:we|i)\s+only\s+(?:had|used|ordered|received|got|asked\s+for|requested|agreed\s+to|signed\s+up\s+for|booked)\b"),
    rule(DISPUTE, 0, r"\b(?:asked|ordered|agreed|signed\s+up)\s+for\s+(?:\S+\s+){0,3}?(?:and|but)\s+(?:were|was|got|have\s+been)\s+(?:billed|charged|invoiced)|\b(?:double|twice|triple)\s+(?:the|what)\s+(?:\w+\s+)?(?:quote|quoted|agreed|estimate|price|we\s+agreed)|\b(?:don't|do\s+not)\s+(?:believe|think)\s+(?:we|i)\s+owe|\b(?:project|order|contract|subscription|service|booking|job|work)\s+(?:\S+\s+)?(?:was|were|has\s+been|had\s+been)\s+cancel+ed|\b(?:expect|want|need|request|ask\s+for)\s+(?:a\s+|an\s+)?(?:credit|refund|discount|reduction|adjustment)\b|\b(?:service|system|site|website|platform|server|software|app)\s+(?:was|were|has\s+been|is)\s+(?:down|unavailable|offline|broken|not\s+working)"),
    rule(DISPUTE, 0, r"\b(?:higher|more|larger|bigger|greater)\s+than\s+(?:the|our|your|what\s+(?:we|was|you))\s+(?:\w+\s+)?(?:quote|quoted|estimate|agreed|contract|agreement|proposal|po|purchase\s+order|budget)\b|\b(?:didn't|did\s+not|never)\s+(?:get|receive)\s+what\s+(?:we|i)\s+(?:paid|ordered|asked)\s+for\b"),
    rule(DISPUTE, 0, r"\b(?:doesn't|don't|does\s+not|do\s+not)\s+add\s+up\b|{MONEY}(?:\s*(?:/|per\s+|an?\s+)(?:hr|hour|h|day|month|mo|unit|item|seat|user)\b)?,?\s+not\s+{MONEY}|\b(?:we|i)\s+(?:have\s+|had\s+)?rejected\b|\b(?:cancel|void|withdraw|retract)\s+(?:this|the|that)\s+(?:invoice|bill|charge)\b"),
    rule(DISPUTE, Q, r"\b(?:signed|agreed|written|original|approved)\s+(?:quote|estimate|proposal|price|budget)\b"),
    rule(DISPUTE, 0, r"\b(?:doesn't|does\s+not|didn't|did\s+not)\s+(?:account\s+for|include|reflect|show|deduct|take\s+into\s+account|factor\s+in)\s+(?:the|our|my|a|any)\b|\bshould(?:n't|\s+not)\s+(?:apply|be\s+(?:there|on\s+(?:the|this|our)))|\b(?:we|i)\s+(?:already\s+)?(?:returned|sent\s+back)\s+(?:the|all|it|them|those|these)\b|\b(?:come|taken|take\s+(?:it|this|that))\s+off\s+(?:the|our|this|your)\s+(?:bill|invoice|account)|\b(?:deduct|knock|take)\s+(?:\S+\s+){0,3}?off\s+(?:the|our|this)\s+(?:bill|invoice)|\b(?:broke|damaged|ruined|destroyed|scratched)\s+(?:our|my|the)\b|\b(?:doesn't|does\s+not|don't)\s+(?:look|seem|appear)\s+(?:right|correct|accurate)|\b(?:we|i)\s+had\s+(?:a|an)\s+(?:fixed|flat|agreed)\s+(?:price|fee|rate|quote)|\b(?:charged|billed|invoiced)\s+(?:us\s+|me\s+)?(?:for\s+)?(?:\S+\s+){0,4}?\S+,?\s+not\s+(?:\$|\xc2\xa3|\xe2\x82\xac|\d|one|two|three|four|five|six|the)"),
    rule(DISPUTE, 0, r"\b(?:was|were)\s+only\s+(?:here|there|on\s+site|onsite|out|with\s+us)\b|\b(?:charged|billed|invoiced)\s+(?:us\s+|me\s+)?(?:for\s+)?(?:\S+\s+){0,5}?but\s+(?:the|we|he|she|they|it|only|your)\b|\b(?:don't|do\s+not|didn't|did\s+not)\s+recogni[sz]e\s+(?:this|the|that|these|those|any\s+of\s+these)\s+(?:charges?|amounts?|fees?|transactions?|items?|lines?|billing)\b|\b(?:were|was)\s+(?:promised|quoted|told|offered)\b|\b(?:isn't|is\s+not|wasn't|hasn't\s+been|has\s+not\s+been|not)\s+(?:been\s+)?(?:reflected|applied|deducted|credited)\b"),
    rule(DISPUTE, 0, r"\bnever\s+(?:arrived|came|showed\s+up|turned\s+up|got\s+here|was\s+delivered|were\s+delivered|reached\s+us)\b").before_veto(r"(?:invoice|bill|e-?mail|statement|reminder|it|copy|letter|pdf|attachment|original|message)\s+(?:\S+\s+)?$"),
    rule(DISPUTE, 0, r"\b(?:broken|defective|damaged|faulty|shoddy|sub-?standard|poor\s+(?:quality|work|workmanship|service)|unacceptable|unusable|incomplete|unfinished|botched|sloppy)\b")
        .before_veto(r"(?:link|portal|url|button|attachment|pdf|file|website)\s+(?:\S+\s+)?(?:is\s+|was\s+|seems\s+|looks\s+)?$"),
    rule(DISPUTE, 0, r"\b(?:delivered|completed|finished|arrived|launched|went\s+live|started|done)\s+(?:\w+\s+){0,2}?(?:weeks?|days?|months?)\s+late\b"),
    rule(DISPUTE, 0, r"\bno\s+work\b|\bnothing\s+(?:was|has\s+been|got|had\s+been|is)\s+(?:\w+\s+)?(?:done|delivered|received|fixed|installed|completed)|\b(?:nobody|no\s+one|no-one)\s+(?:from\s+(?:your|the)\s+\S+\s+)?(?:ever\s+)?(?:showed|came|turned|set\s+foot|was\s+(?:here|there|on\s+site)|visited|attended|did|made|performed|ordered|requested|asked\s+for|approved|authori[sz]ed)"),
    rule(DISPUTE, 0, r"\b(?:we|i)\s+(?:had\s+|have\s+)?(?:already\s+)?cancel+ed\b|\bcancel+ed\s+(?:our|the|my|this)\s+(?:\w+\s+)?(?:subscription|contract|service|order|account|plan|membership|agreement|booking|project)"),
    rule(DISPUTE, 0, r"\bstill\s+(?:billed|charged|invoiced|being\s+(?:billed|charged|invoiced))|\b(?:billed|charged|invoiced)\s+(?:us\s+|me\s+)?(?:\S+\s+){0,4}?(?:that|which|we|i)\s+(?:never|didn't|did\s+not|were\s+not|was\s+not|wasn't|weren't|returned|cancel+ed|sent\s+back|rejected|declined|don't|do\s+not)"),
    rule(DISPUTE, 0, r"\bshould(?:n't|\s+not)\s+(?:have\s+)?(?:been\s+)?(?:be\s+)?(?:charged|billed|invoiced)|\b(?:should|was\s+supposed\s+to)\s+(?:only\s+)?(?:be|have\s+been|cost)\s+(?:only\s+)?(?:\$|\xc2\xa3|\xe2\x82\xac|\d|free|included|covered|waived|half)|\b(?:is|was|were|are|should\s+be)\s+(?:already\s+)?(?:included|covered)\s+(?:in|by|under)\b"),
    rule(DISPUTE, 0, r"\b(?:don't|do\s+not|doesn't|does\s+not)\s+owe\b|\bowe\s+(?:you\s+)?nothing")
        .after_veto(r"^[^.!?\n]*\b(?:paid|settled)\b"),
    rule(DISPUTE, 0, r"\b(?:hold|pause|freeze)\s+(?:this|the|that)\s+(?:invoice|bill|charge)|\bon\s+hold\s+until\s+(?:we|the\s+(?:issue|dispute|review))"),
    rule(DISPUTE, N, r"\bcomplain\w*|\b(?:not|never)\s+(?:happy|satisfied)\s+with|\bunhappy\s+with|\bdissatisfied|\bdisappointed\s+(?:with|in)|\bwhat\s+we\s+(?:actually\s+)?(?:got|received)\s+was\b"),
    // French
    rule(DISPUTE, 0, r"\bne\s+reconnai\w*\s+pas\s+(?:\S+\s+){0,2}?(?:facture|montant|somme|prestation|debit|frais|ligne)|\blitige|\breclamation|\berreur\s+(?:de\s+|dans\s+(?:la|le|votre|cette)\s+|sur\s+(?:la|le|votre|cette)\s+)(?:factur|montant|calcul|prix|tarif|quantit|tva)|\b(?:factur|montant|prix|tarif|total|somme|calcul)\w*\s+(?:\S+\s+){0,3}?(?:est|sont|semble|parait)\s+(?:\w+\s+)?(?:errone|incorrect|faux|fausse|inexact|trop\s+eleve|exager)").foreign(),
    rule(DISPUTE, 0, r"\bn'(?:ont|a|avons|ai)\s+(?:jamais|pas)\s+(?:ete\s+)?(?:eu\s+lieu|commande|valide|approuve|signe|accepte|demande|realise|effectue|livre|termine|fait|autorise|recu\s+(?:la|le|les)\s+(?:marchandise|livraison|prestation|materiel|commande))|\bjamais\s+(?:ete\s+)?(?:commande|valide|approuve|signe|livre|realise|effectue|accepte|eu\s+lieu)").foreign(),
    rule(DISPUTE, 0, r"\b(?:facture|factures|facturee?s?)\s+(?:\S+\s+)?(?:deux\s+fois|en\s+double|a\s+tort)|\bdoublon|\ben\s+double\b|\bun\s+avoir\b|\bfacture\s+(?:corrigee|rectifi\w*|modifiee)|\b(?:ne\s+)?(?:paierons|payerons|reglerons|paierai|payerai|reglerai)\s+pas\b|\brefus\w*\s+de\s+(?:payer|regler)|\bnon\s+conforme|\bpas\s+conforme|\bne\s+correspond\s+pas|\bpas\s+d'accord").foreign(),
    // German
    rule(DISPUTE, 0, r"\berkenne\w*\s+(?:\S+\s+){0,3}?nicht\s+an\b|\bfehlerhaft|\bunrichtig|\bbeanstand\w*|\breklam\w*|\bwiderspr\w*|\bwiderspruch|\bbestreit\w*|\bbestritten|\bunberechtigt|\bnicht\s+einverstanden|\bstimm(?:t|en)\s+(?:\S+\s+){0,3}?nicht\b|\bzahlen\s+wir\s+nicht\b|\bstornier\w*|\bgutschrift|\brechnungskorrektur|\bkorrigierte\w*\s+rechnung").foreign(),
    rule(DISPUTE, 0, r"\b(?:nie|nicht)\s+(?:\S+\s+){0,3}?(?:angekommen|eingetroffen|geliefert)\b").before_veto(r"(?:rechnung|e-?mail|mail|schreiben|mahnung)\s+(?:\S+\s+){0,3}$").foreign(),
    rule(DISPUTE, 0, r"\bno\s+(?:es|esta|son|estan)\s+(?:correct|bien\b)|\bn'(?:est|etait)\s+pas\s+(?:correct|juste|exact|bon)|\bnao\s+(?:esta|e)\s+(?:corret|cert)").foreign(),
    rule(DISPUTE, 0, r"\b(?:rechnung|betrag|summe|preis|abrechnung|stundenzahl|anzahl|menge)\s+(?:\S+\s+){0,3}?(?:ist|war|sind|scheint)\s+(?:\S+\s+)?(?:falsch|fehlerhaft|nicht\s+korrekt|nicht\s+richtig|zu\s+hoch|unrichtig|uberhoht)|\bdoppelt\s+(?:\S+\s+)?(?:berechnet|abgerechnet|belastet|in\s+rechnung|fakturiert|gebucht)|\bzu\s+viel\s+(?:\S+\s+)?(?:berechnet|abgerechnet|verlangt)|\bfalsch\s+(?:berechnet|abgerechnet|ausgestellt)|\bfehler\s+(?:in|auf|bei)\s+der\s+(?:rechnung|abrechnung)").foreign(),
    rule(DISPUTE, 0, r"\b(?:nicht|nie)\s+(?:\S+\s+)?(?:bestellt|beauftragt|vereinbart|erbracht|geliefert|abgenommen|durchgefuhrt|fertiggestellt|abgeschlossen|stattgefunden)|\b(?:werden|wird|werde)\s+(?:\S+\s+){0,3}?nicht\s+(?:\S+\s+)?(?:bezahlen|zahlen|begleichen|akzeptieren)|\bverweigern").foreign(),
    // Spanish
    rule(DISPUTE, 0, r"\bimpugn\w*|\breclamacion|\bno\s+(?:estamos|estoy)\s+de\s+acuerdo|\bdesacuerdo|\bindebid\w*|\berror\s+(?:en|de)\s+(?:la\s+|el\s+)?(?:factura|importe|facturacion|cobro|cantidad|precio|calculo)|\b(?:factura|importe|cantidad|cobro|monto|precio|total|cargo)\s+(?:\S+\s+){0,3}?(?:es|esta|son|estan|parece)\s+(?:\w+\s+)?(?:incorrect|erron|equivocad|mal\b|excesiv)").foreign(),
    rule(DISPUTE, 0, r"\bnunca\s+(?:\w+\s+)?(?:contratamos|contrate|pedimos|pedi|solicitamos|solicite|autorizamos|autorice|aprobamos|aprobe|encargamos|acordamos)\b|\b(?:cobrad|facturad|cargad)\w*\s+(?:\S+\s+){0,2}?dos\s+veces|\bduplicad|\bdoble\s+(?:cobro|cargo|factura)|\bno\s+(?:hemos|he|habiamos)\s+(?:\w+\s+)?(?:pedido|solicitado|autorizado|aprobado|contratado|encargado|acordado|recibido\s+(?:el|los|la|las)\s+(?:material|producto|pedido|servicio|mercancia|equipo))|\bno\s+se\s+(?:ha|han)\s+(?:\w+\s+)?(?:realizado|hecho|prestado|entregado|terminado|completado|finalizado)|\bno\s+(?:vamos|voy)\s+a\s+(?:pagar|abonar|aceptar)|\bno\s+(?:pagaremos|pagare|abonaremos)|\bnos\s+negamos\s+a\s+pagar|\bfactura\s+(?:rectificativa|corregida)|\bnota\s+de\s+(?:credito|abono)").foreign(),
    // Italian
    rule(DISPUTE, 0, r"\bcontestazion|\breclamo\b|\bnon\s+siamo\s+d'accordo|\berrore\s+(?:nella|di|sulla|in|nel)\s+(?:fattur|import|calcol|prezz)|\b(?:fattura|importo|prezzo|tariffa|cifra|totale|addebito)\s+(?:\S+\s+){0,3}?(?:e|sono|risulta|sembra)\s+(?:\w+\s+)?(?:errat|sbagliat|non\s+corrett|eccessiv|gonfiat)|\baddebitat\w*\s+(?:\S+\s+)?due\s+volte|\bfatturat\w*\s+(?:\S+\s+)?due\s+volte|\bdoppia\s+fattur|\bdoppio\s+addebito").foreign(),
    rule(DISPUTE, 0, r"\bnon\s+abbiamo\s+(?:mai\s+)?(?:ordinato|approvato|autorizzato|richiesto|accettato|firmato|ricevuto\s+(?:la|il|i|le)\s+(?:merce|materiale|prodott|ordine|servizio))|\bnon\s+(?:e|sono)\s+stat[oaie]\s+(?:mai\s+)?(?:eseguit|complet|consegnat|realizzat|effettuat|svolt|fornit|ordinat|approvat)|\bnon\s+(?:pagheremo|paghero)|\bnon\s+(?:intendiamo|vogliamo)\s+(?:\w+\s+)?pagare|\bnota\s+di\s+credito|\bstorn(?:o|are|ate)\b").foreign(),
    // Portuguese
    rule(DISPUTE, 0, r"\bnao\s+reconhec\w*\s+(?:\S+\s+){0,2}?(?:cobranca|fatura|valor|debito|servico|compra|despesa|lancamento)|\bcobranca\s+indevida|\bcontestac|\bnao\s+concordamos|\breclamac|\b(?:valor|fatura|cobranca|montante|preco|total)\s+(?:\S+\s+){0,3}?(?:esta|e|parece)\s+(?:\w+\s+)?(?:errad|incorret|equivocad|acima)|\bduplicidade|\bcobrad\w*\s+(?:\S+\s+)?duas\s+vezes|\bem\s+dobro|\bnao\s+(?:\w+\s+)?(?:contratamos|solicitamos|autorizamos|aprovamos|pedimos|encomendamos)|\bnao\s+(?:foi|foram)\s+(?:\w+\s+)?(?:realizad|prestad|conclu|entregu|feit|execut)|\bnao\s+(?:vamos|iremos)\s+pagar|\bnao\s+pagaremos|\bestorno").foreign(),
    // Dutch
    rule(DISPUTE, 0, r"\bbetwist\w*|\bbezwaar|\bniet\s+akkoord|\boneens|\bklopt\s+niet|\bonjuist|\bfoutie?f|\bfout\s+in\s+de\s+(?:factuur|rekening)|\bte\s+hoog\s+(?:gefactureerd|berekend)|\bdubbel\s+(?:\S+\s+)?(?:gefactureerd|berekend|gerekend|in\s+rekening|afgeschreven)|\bcreditnota|\bcreditfactuur|\bgecorrigeerde\s+factuur|\bweigeren\s+te\s+betalen").foreign(),
    rule(DISPUTE, 0, r"\bniet\s+(?:\S+\s+)?(?:besteld|geleverd|uitgevoerd|afgerond|opgeleverd|afgesproken)|\bnooit\s+(?:\S+\s+)?(?:besteld|geleverd|uitgevoerd)|\b(?:we|wij|ik)\s+(?:gaan\s+|zullen\s+)?(?:\S+\s+){0,3}?niet\s+betalen")
        .match_veto(r"\b(?:kunnen|kan)\b").foreign(),

    // ───────────────────────────── already_paid ─────────────────────────────
    rule(PAID, N | I, r"\balready\s+(?:\w+\s+)?(?:been\s+)?(?:paid|settled|sent|mailed|wired|transferred|processed|remitted|cleared|taken\s+care\s+of|made|submitted|went\s+out|gone\s+out|deposited|cashed|issued|completed|done)\b")
        .after_veto(r"^\s*(?:you\s+)?(?:an?\s+|the\s+|our\s+|your\s+|my\s+|this\s+|that\s+)?(?:e-?mail|message|note|request|question|po\b|w-?9|form|document|copy|info|details|statement|letter|query|complaint|dispute|invoice)"),
    rule(PAID, N, r"\b(?:dropped\s+off|handed\s+(?:over|in)|hand-delivered|delivered)\s+(?:a|the|our|your)\s+(?:check|cheque|payment)\b"),
    rule(PAID, N | F, r"\bpaid\s+(?:it\s+|this\s+|that\s+)?already\b|\bpaid\s+in\s+full\b|\bfully\s+paid|\bpaid\s+up\b|\bpaid\s+off\b"),
    rule(PAID, N, r"\b(?:we|i|they|he|she|my\s+\w+|our\s+(?:\w+\s+){0,2}?(?:team|office|dept|department|ap|accounts|accountant|bookkeeper|controller|cfo|bank|company|finance|firm|manager|boss|owner|payroll))(?:'ve|'d|\s+(?:have|had|just|already|actually|definitely|certainly|did))*\s+(?:paid|payed|settled|remitted|wired|transferred|deposited|cleared)\b")
        .before_veto(r"\b(?:if|unless|once|when|until|before|whether)\s*$").after_veto(r"^\s*(?:us|me)\b"),
    rule(PAID, N, r"\b(?:we|i|they|our\s+(?:\w+\s+){0,2}?(?:team|office|ap|accounts|accountant|bookkeeper|controller|bank|company|finance))(?:'ve|\s+(?:have|had|just|already|actually))*\s+(?:sent|mailed|made|issued|posted|submitted|released|processed|initiated|completed|put\s+through|pushed\s+through|dropped)\b")
        .after_req(r"^\s*(?:you\s+)?(?:it|this|that|them|the\s+(?:payment|check|cheque|money|funds|wire|transfer|balance|amount|ach|eft|remittance|full\s+amount|invoice\s+amount)|a\s+(?:payment|check|cheque|wire|transfer)|payment|(?:a|the|our)?\s*(?:\$|\xc2\xa3|\xe2\x82\xac|\d)|over|out|on\s|last|yesterday|in\s+(?:full|january|february|march|april|may|june|july|august|september|october|november|december)|via|by\s+(?:ach|wire|check|cheque|card|bank|transfer)|through|a\s+week|two|three|already|back\s+in|earlier|{WEEKDAY})"),
    rule(PAID, N | I, r"\b(?:it|this|that|invoice|payment|bill|balance|amount|check|cheque|wire|transfer|ach|eft|remittance|funds|money|inv\S*)\s*(?:\S+\s+){0,5}?(?:was|were|has\s+been|have\s+been|had\s+been|'s\s+been|is\s+already|has\s+already\s+been|was\s+already|were\s+already)\s+(?:already\s+|actually\s+|successfully\s+|fully\s+)?(?:paid|payed|settled|remitted|wired|transferred|cleared|deposited|cashed|debited|taken\s+care\s+of)\b"),
    rule(PAID, N | I, r"\b(?:payment|check|cheque|wire|transfer|ach|eft|remittance|funds|money|it|that)\s*(?:\S+\s+){0,5}?(?:was|were|has\s+been|have\s+been|had\s+been|'s\s+been|went|got|has\s+already\s+been|was\s+already|has\s+gone|have\s+gone|'s\s+gone)\s+(?:already\s+|actually\s+|successfully\s+)?(?:sent|mailed|processed|released|out|through|made|completed|issued|initiated|submitted|received|executed|cashed|cleared|approved\s+and\s+(?:paid|sent))\b")
        .after_veto(r"^\s*(?:to\s+(?:the\s+)?(?:wrong|my|our|me|an?\s+old)|of\s+(?:the\s+)?office|by\s+(?:mistake))"),
    rule(PAID, N, r"\b(?:we|i)\s+(?:already\s+|just\s+)?(?:did|made|sent|initiated|processed|completed|submitted|executed)\s+(?:a|an|the|our|its|my)\s+(?:\w+\s+)?(?:wire|transfer|ach|payment|eft|bank\s+transfer|direct\s+deposit|e-?transfer|deposit)\b"),
    rule(PAID, 0, r"\b(?:check|cheque|payment|money|it)\s+(?:is|'s)\s+(?:already\s+)?(?:in\s+the\s+(?:mail|post)|on\s+(?:its|the)\s+way)\b|\bin\s+the\s+mail\s+(?:already|since)"),
    rule(PAID, 0, r"\byou\s+should\s+(?:have|'ve)\s+(?:(?:already\s+)?(?:received|gotten|got|had)\s+it|it|the\s+(?:payment|check|funds|money))\s+(?:by\s+now|already)|\byou\s+should\s+(?:have|'ve)\s+(?:already\s+)?(?:received|gotten|got)\s+(?:it|the|our|a|payment)|\bshould\s+have\s+(?:already\s+)?(?:cleared|arrived|landed|hit\s+your\s+account|reached\s+you)"),
    rule(PAID, N | Q | F, r"\bremittance(?:\s+advice)?\s+(?:is\s+|was\s+)?(?:attached|enclosed|included|below|sent)|\b(?:attached|enclosed|here\s+is|here's|see\s+attached|please\s+find|i've\s+attached)\s+(?:\S+\s+){0,3}?(?:remittance|proof\s+of\s+payment|payment\s+confirmation|confirmation\s+of\s+payment|receipt|bank\s+(?:confirmation|statement|slip)|transfer\s+confirmation|wire\s+confirmation)|\bproof\s+of\s+payment|\bremittance\b"),
    rule(PAID, Q, r"\bpayment\s+(?:confirmation|reference|ref|id)\s*(?:#|no\.?|number|:)?\s*[a-z]*-?\d|\bconfirmation\s+(?:#|no\.?|number|code)\s*:?\s*[a-z-]*\d|\b(?:bank\s+|our\s+|sepa\s+|ach\s+|wire\s+)ref(?:erence)?\.?\s*(?:#|no\.?|number|is|:)?\s*[a-z0-9-]*\d"),
    rule(PAID, F, r"(?:^|[.!?\n]\s*|\s-+\s*|\b(?:yes|yeah|yep|uh|um|hi|hello|oh|this|that)\s*,?\s*)(?:paid|settled|payed|all\s+paid|already\s+paid|it's\s+paid|its\s+paid|this\s+is\s+paid|that's\s+paid|is\s+paid)\b")
        .after_veto(r"^\s*(?:\?|not\b|no\b|by\s+(?:the\s+end|end|next|\w+day|the\s+\d)|when|once|after)"),
    rule(PAID, F | N, r"\b(?:wire|payment|check|cheque|ach|eft|transfer|funds|remittance|money|sepa|bacs)\s+(?:\S+\s+){0,2}?(?:sent|mailed|made|completed|done|processed|issued|initiated|released|executed|submitted|wired|cleared|cashed|received|debited|transmitted)\s+(?:on\b|last|yesterday|this\s+morning|earlier|\d|{WEEKDAY}|{MONTHS}|a\s+(?:week|few|couple)|two|three|ago|via|through|by)"),
    rule(PAID, N | F, r"\b(?:check|cheque|payment|transfer|wire|funds|money|ach|it)\s+(?:\S+\s+){0,2}?(?:cleared|hit|reached|landed\s+in|arrived\s+in|was\s+cashed)\s+(?:your|the|in\s+your)\b").after_veto(r"^\s*(?:\w+\s+)?(?:by|before|on|in\s+\w+\s+days|tomorrow|next)\b"),
    rule(PAID, 0, r"\b(?:cleared|debited|left|came\s+out\s+of|went\s+out\s+of)\s+(?:our|my)\s+(?:bank|account)|\b(?:cashed|deposited)\s+(?:our|my|the)\s+(?:check|cheque)"),
    rule(PAID, N, r"\b(?:payment|funds|money|transfer)\s+(?:leaving|left|going\s+out\s+of|debited\s+from|came\s+out\s+of)\s+(?:our|my)\s+(?:account|bank)|\bi\s+can\s+see\s+(?:the|our)\s+(?:payment|transfer|debit)"),
    rule(PAID, N | F, r"\b(?:invoice|payment|bill|balance|amount|inv\S*)\s+(?:\S+\s+)?(?:settled|paid|remitted|cleared)\s+(?:on\b|in\s+full|last|yesterday|via|through|by\s+(?:ach|wire|bank|card|check|cheque|transfer|bacs|eft|sepa))"),
    // French
    rule(PAID, N | I, r"\bdeja\s+(?:\S+\s+){0,2}?(?:paye|regle|vire|verse|solde|effectue|acquitte|fait\s+le\s+(?:virement|paiement))e?s?\b|\b(?:a|ont|avons|ai)\s+(?:deja\s+|bien\s+)?(?:ete\s+)?(?:paye|regle|vire|verse|solde|effectue|acquitte|execute|procede\s+au\s+(?:paiement|reglement|virement))e?s?\b|\b(?:virement|paiement|reglement|cheque)\s+(?:\S+\s+){0,3}?(?:a\s+ete|est\s+parti|est\s+deja|a\s+deja\s+ete)\s+(?:\w+\s+)?(?:effectue|envoye|fait|execute|emis|parti|passe|debite)").foreign(),
    rule(PAID, Q, r"\bjustificatif|\bpreuve\s+de\s+(?:paiement|virement)|\bavis\s+de\s+(?:virement|paiement)").foreign(),
    // German
    rule(PAID, N | I, r"\b(?:bereits|schon|langst)\s+(?:\S+\s+){0,5}?(?:bezahlt|uberwiesen|ueberwiesen|beglichen|gezahlt|ausgeglichen|angewiesen|erledigt|veranlasst|ausgefuhrt|getatigt)|\b(?:wurde|wurden|ist|sind|haben|habe|hat|hatten)\s+(?:\S+\s+){0,4}?(?:bezahlt|uberwiesen|ueberwiesen|beglichen|gezahlt|ausgeglichen)\b").foreign(),
    rule(PAID, Q, r"\bzahlungsnachweis|\buberweisungsbeleg|\bueberweisungsbeleg|\bzahlungsbestatigung|\bzahlungsbeleg|\bkontoauszug|\banbei\s+(?:\S+\s+){0,2}?(?:beleg|nachweis|bestatigung)").foreign(),
    // Spanish
    rule(PAID, N | I, r"\bya\s+(?:\S+\s+){0,2}?(?:pagad[oa]s?|abonad[oa]s?|pagamos|pague|abonamos|transferimos|liquidad[oa]s?|saldad[oa]s?|cancelad[oa]s?|hicimos|efectuamos)\b|\b(?:fue|ha\s+sido|han\s+sido|fueron|esta|estan)\s+(?:ya\s+)?(?:pagad|abonad|liquidad|saldad|transferid|cancelad)[oa]s?\b|\bhemos\s+(?:ya\s+)?(?:pagado|abonado|transferido|liquidado|saldado|(?:realizado|hecho|efectuado)\s+(?:el|la)\s+(?:pago|transferencia))|\bhicimos\s+(?:el|la)\s+(?:pago|transferencia|ingreso)|\bse\s+(?:\w+\s+)?(?:realizo|hizo|efectuo|pago|abono|transfirio|envio|ingreso|liquido)\b|\b(?:fue|fueron)\s+(?:\w+\s+)?(?:realizad|efectuad|hech|enviad|transferid|ingresad)[oa]s?\b|\b(?:efectuamos|realizamos|enviamos|mandamos|pagamos|abonamos|transferimos)\s+(?:\S+\s+){0,4}?(?:ayer|la\s+semana\s+pasada|el\s+(?:\w+\s+)?pasado|hace\s+\w+)").foreign(),
    rule(PAID, Q, r"\bjustificante|\bcomprobante").foreign(),
    // Italian
    rule(PAID, N | I, r"\bgia\s+(?:\S+\s+){0,2}?(?:pagat|saldat|bonificat|effettuat|versat|liquidat|dispost|inviat|eseguit)[oaie]\b|\b(?:abbiamo|ho)\s+(?:gia\s+)?(?:pagato|saldato|effettuato|disposto|eseguito|versato|bonificato|inviato\s+il\s+(?:bonifico|pagamento))|\b(?:e|sono)\s+stat[oaie]\s+(?:gia\s+)?(?:pagat|saldat|effettuat|eseguit|dispost|versat|liquidat|inviat)[oaie]\b").foreign(),
    rule(PAID, Q, r"\bcontabile\b|\bricevuta\s+(?:del|di)\s+(?:bonifico|pagamento)").foreign(),
    // Portuguese
    rule(PAID, N | I, r"\bja\s+(?:\S+\s+){0,2}?(?:pag[oa]s?|pagamos|paguei|efetuad[oa]s?|quitad[oa]s?|realizad[oa]s?|feit[oa]s?|transferid[oa]s?|liquidad[oa]s?|depositad[oa]s?)\b|\b(?:foi|foram)\s+(?:\w+\s+)?(?:pag[oa]s?|efetuad[oa]s?|quitad[oa]s?|realizad[oa]s?|feit[oa]s?|transferid[oa]s?|liquidad[oa]s?|depositad[oa]s?)\b|\b(?:pagamos|paguei|efetuamos|transferimos|quitamos|depositamos)\s+(?:\S+\s+){0,3}?(?:ontem|semana\s+passada|mes\s+passado|ha\s+\w+)").foreign(),
    rule(PAID, Q, r"\bcomprovante").foreign(),
    // Dutch
    rule(PAID, N | I, r"\b(?:al|reeds|allang|inmiddels)\s+(?:\S+\s+){0,2}?(?:betaald|voldaan|overgemaakt|overgeboekt|gestort|afgeschreven)\b|\b(?:is|zijn|werd|werden|hebben|heb|heeft)\s+(?:\S+\s+){0,5}?(?:betaald|voldaan|overgemaakt|overgeboekt|gestort)\b").foreign(),
    rule(PAID, Q, r"\bbetalingsbewijs|\bbewijs\s+van\s+betaling|\bbetaalbewijs").foreign(),

    // ───────────────────────────── payment_plan ─────────────────────────────
    rule(PLAN, N, r"\bpayment\s+(?:plan|arrangement|schedule|agreement|program)s?\b|\b(?:plan|schedule)\s+(?:of|for)\s+payments?|\binstal+ments?\b|\binstall?ment\s+plan"),
    rule(PLAN, N, r"\b(?:split|divide)\s+(?:\S+\s+){0,4}?(?:into|in|over|across|between)\b|\bbreak\s+(?:\S+\s+){0,3}?up\b|\bspread\s+(?:\S+\s+){0,4}?(?:over|across|out)\b|\bstagger\w*|\bphased?\s+payments?"),
    rule(PLAN, 0, r"\b(?:two|three|four|five|six|seven|eight|nine|ten|twelve|several|multiple|smaller|monthly|weekly|bi-?weekly|partial|separate|equal|\d{1,2})\s+(?:\w+\s+)?(?:payments|instalments|installments|chunks|tranches|parts)\b"),
    rule(PLAN, 0, r"\bpartial\s+payments?|\bpart[\s-]payments?|\bpay\s+(?:\w+\s+)?(?:in\s+)?part\b|\bpay\s+(?:something|some\s+of\s+it|a\s+portion|part\s+of\s+it)\b"),
    rule(PLAN, 0, r"(?:\b(?:half|part|some|a\s+portion|a\s+bit|something)|{MONEY}|\b\d{1,3}\s?%)\s+(?:of\s+it\s+)?(?:\S+\s+){0,6}?(?:\S+)?[\s,]+(?:and\s+|then\s+|plus\s+|with\s+)?(?:the\s+)?(?:rest|balance|remainder|remaining|other\s+half|second\s+half|outstanding)\b"),
    rule(PLAN, 0, r"\bhalf\s+(?:\S+\s+){0,4}?(?:and\s+)?(?:the\s+)?(?:other|second|remaining|next|another)?\s*half\b|\bfirst\s+half\b[^.?!\n]*\bsecond\s+half\b|\bhalf\s+now\b"),
    rule(PLAN, 0, r"\bpay\s+(?:it\s+|this\s+|the\s+(?:balance|invoice|bill)\s+)?(?:off\s+)?in\s+(?:pieces|chunks|bits|parts|stages|installments|instalments)\b|\b(?:not\s+sure|don't\s+(?:know|think))\s+(?:if\s+|whether\s+)?(?:we|i)\s+(?:can|could|will\s+be\s+able\s+to)\s+(?:pay|cover|afford)\s+(?:all\s+of\s+it|all|it\s+all|the\s+(?:full|whole|entire))"),
    rule(PLAN, 0, r"{MONEY}\s+(?:\w+\s+)?(?:a|per|each|every)\s+(?:month|week|fortnight|pay\s+period)\b|\b(?:monthly|weekly)\s+(?:payments?|amounts?|instal\w*|installments?)"),
    rule(PLAN, 0, r"\bover\s+(?:the\s+next\s+|the\s+coming\s+)?(?:\w+\s+){0,3}?(?:months|weeks|pay\s+periods|paychecks)\b").match_veto(r"\b(?:past|last|previous|since)\b"),
    rule(PLAN, N, r"\bmore\s+time\b|\bextra\s+time\b|\bextension\b|\bextend\s+(?:the\s+|our\s+)?(?:\w+\s+)?(?:deadline|due\s+date|date|terms|payment|time)|\bgrace\s+period|\bsome\s+(?:more\s+)?(?:time|leeway|flexibility)\b|\bbit\s+(?:more\s+)?(?:time|longer)\b|\bbreathing\s+room|\bleeway\b"),
    rule(PLAN, 0, r"\b(?:a\s+(?:few|couple)(?:\s+of)?\s+more|another|an\s+extra|an\s+additional|\d+\s+(?:more|extra|additional)|(?:two|three|four|few|several)\s+(?:more|extra|additional))\s+(?:\d+\s+)?(?:days?|weeks?|months?)\b")
        .before_veto(r"(?:take|takes|taking|show|be)\s+(?:a\s+)?$"),
    rule(PLAN, N, r"\b(?:give|grant|allow|let)\s+(?:us|me)\s+(?:\S+\s+){0,3}?(?:until|till|til|through|more|another|a\s+(?:few|couple|bit|week|month)|some|extra|an?\s+(?:week|month|extension)|to\s+(?:the\s+end|next))"),
    rule(PLAN, N, r"\b(?:need|needs|needed)\s+(?:until|till|til|a\s+(?:few|couple|bit|little)\s+(?:more\s+)?(?:days|weeks|time)|more\s+time|another|to\s+(?:the\s+end|next))"),
    rule(PLAN, 0, r"\b(?:we|i)\s+(?:could\s+|can\s+|might\s+|may\s+)?pay\s+(?:\S+\s+){0,3}?(?:later|instead|next|in\s+{MONTHS}|at\s+the\s+end|by\s+the\s+end|end\s+of|until|after)\b[^.!?\n]*\?").before_veto(r"\b(?:fee|fees|charge|interest|discount|penalt\w*|cost|price)\b[^.!?\n]*$").match_veto(r"\b(?:by|via|with|through|using)\s+(?:a\s+|the\s+)?(?:card|credit|debit|check|cheque|ach|wire|bank|transfer|paypal|stripe|cash|portal|online|phone)"),
    rule(PLAN, 0, r"\b(?:won't|will\s+not|can't|cannot|unable\s+to|not\s+able\s+to)\s+(?:be\s+able\s+to\s+)?pay\s+(?:\S+\s+){0,3}?(?:until|till|before)\b"),
    rule(PLAN, 0, r"\b(?:won't|will\s+not|can't|cannot|unable\s+to|not\s+able\s+to)\s+(?:be\s+able\s+to\s+)?(?:pay|make\s+(?:it|the\s+payment))\s+(?:it\s+|this\s+|the\s+\w+\s+)?(?:(?:this|next|by|on)\s+(?:{WEEKDAY}|week|month|time)|on\s+the\s+\d+(?:st|nd|rd|th)?|today|tomorrow)\b"),
    rule(PLAN, 0, r"\b(?:can|could|may)\s+(?:we|i)\s+(?:please\s+)?(?:do|make\s+it)\b[^.!?\n]*\binstead\b[^.!?\n]*\?"),
    rule(PLAN, 0, r"\b(?:can|could|may)\s+(?:we|i)\s+(?:please\s+)?(?:have|get)\s+(?:until|till|til|to\s+the\s+end|more|another|a\s+(?:few|couple|bit|little))"),
    rule(PLAN, 0, r"\b(?:\d+|thirty|sixty|ninety)\s+days\s+instead\s+of\b|\binstead\s+of\s+(?:\d+|thirty)\s+days|\b(?:can|could|may)\s+(?:we|i)\s+(?:please\s+)?(?:get|have)\s+(?:an?\s+)?(?:extra\s+|additional\s+|another\s+)?(?:\d+|a\s+few|a\s+couple\s+of|two|three|thirty|sixty|ninety)\s+(?:more\s+)?(?:days|weeks|months)\b"),
    rule(PLAN, 0, r"{MONEY}\s+(?:now|today|upfront|up\s+front|immediately|this\s+(?:week|month|friday))\s*,?\s+(?:and|then|plus)\s+|\bwhat\s+(?:i|we)\s+can\s+(?:each|every|per|a)\s+(?:month|week)|\btimes\s+are\s+(?:hard|tough|difficult)"),
    rule(PLAN, 0, r"\b(?:can|could|may)\s+(?:we|i)\s+(?:please\s+)?(?:pay|settle)\s+(?:it\s+|this\s+|the\s+\w+\s+)?(?:on|by|at|in|after|until|next|end|instead)\b[^.!?\n]*\?").match_veto(r"\b(?:by|via|with|through|using|in)\s+(?:a\s+|the\s+)?(?:card|credit|debit|check|cheque|ach|wire|bank|transfer|paypal|stripe|zelle|venmo|direct|cash|portal|online|phone|eft|sepa|full|installments|instalments)"),
    rule(PLAN, 0, r"\blet\s+(?:us|me)\s+pay\s+(?:\S+\s+){0,2}?(?:later|by\s+(?:the\s+end|next|end)|next|in\s+(?:installments|instalments|parts|two|three|stages)|over|monthly|a\s+little)|\b(?:money|cash|financial)\s+(?:troubles?|problems?|issues?|difficult\w*|worries)|\bwork\s+something\s+out\b|\bwork\s+out\s+(?:a|some)\s+(?:plan|arrangement|deal|schedule)|\bcome\s+to\s+(?:an|some)\s+arrangement|\b(?:a\s+little|something|a\s+bit|some)\s+(?:each|every|per|a)\s+(?:month|week|payday)\b|\b(?:lost|losing)\s+(?:my|our)\s+(?:job|income|work|biggest\s+client|main\s+client|funding)\b|\bpay\s+(?:it\s+|this\s+)?(?:off\s+)?(?:slowly|gradually|over\s+time)"),
    rule(PLAN, N, r"\b(?:push|move|bump|roll|shift)\s+(?:it|this|that|the\s+(?:payment|date|due\s+date|deadline|invoice|balance)|payment)\s+(?:back|out|to|until|till|into)\b|\b(?:postpone|defer|reschedul)\w*|\bput\s+(?:it\s+|this\s+|payment\s+)?off\b|\bhold\s+off\b|\bdelay\s+(?:the\s+|our\s+|this\s+)?payment"),
    rule(PLAN, 0, r"\b(?:can|could|would)\s+(?:it|this|that|you|we|the\s+(?:payment|invoice))\s+(?:please\s+)?wait\b|\bif\s+(?:it|this)\s+can\s+wait"),
    rule(PLAN, 0, r"\b(?:tough|tight|difficult|hard|rough|bad|challenging|lean)\s+(?:\w+\s+){0,2}?(?:spot|times?|patch|months?|quarters?|period|situation|year|weeks?|stretch|season)\b")
        .after_veto(r"^\s*(?:find|finding|locat|understand|figur|read|open|access|log|getting\s+through)"),
    rule(PLAN, 0, r"\bcash[\s-]?flow|\bcash\s+(?:is|has\s+been|'s)\s+(?:\w+\s+)?(?:tight|short|low|limited)|\bmoney\s+is\s+(?:\w+\s+)?tight|\bfunds\s+are\s+(?:\w+\s+)?(?:tight|low|limited|short)|\bbudget\s+is\s+(?:\w+\s+)?tight|\bliquidit\w*|\bshort\s+on\s+(?:cash|funds|money)|\bstrapped\b|\bcash\s+crunch|\btight\s+on\s+(?:cash|funds|money)"),
    rule(PLAN, 0, r"\b(?:can't|cannot|can\s+not|unable\s+to|won't\s+be\s+able\s+to|not\s+able\s+to|couldn't|could\s+not|not\s+in\s+a\s+position\s+to)\s+(?:\w+\s+){0,2}?(?:pay|cover|afford|do|manage|settle|make)\s+(?:\S+\s+){0,4}?(?:full|all\s+at\s+once|at\s+once|in\s+one\s+go|in\s+one\s+(?:payment|lump|hit|shot)|right\s+now|at\s+the\s+moment|at\s+this\s+time|at\s+present|this\s+month|entire|whole|everything|lump\s+sum|all\s+of\s+it|it\s+all|the\s+total)|\b(?:can't|cannot|unable\s+to|not\s+able\s+to)\s+afford"),
    rule(PLAN, 0, r"\bfinancial\w*\s+(?:difficult\w*|hardship|problems?|trouble|issues?|struggles?|crunch|squeeze|constraints?|strain|distress|pressure)|\bfinancially\s+(?:struggling|strapped|stretched|tight)|\bhardship\b|\bstruggl\w*\s+(?:\w+\s+){0,3}?(?:pay|cash|money|financ|business|bills|make\s+ends)|\bbusiness\s+(?:has\s+been|is|was|'s\s+been)\s+(?:\w+\s+)?(?:slow|down|bad|tough|quiet|dead|rough)|\b(?:slow|quiet|bad)\s+(?:season|month|quarter|year|spell|period)"),
    rule(PLAN, 0, r"\bbankrupt\w*|\bchapter\s+(?:7|11|13|seven|eleven|thirteen)\b|\binsolven\w*|\breceivership|\b(?:in|into|entered)\s+administration\b|\brestructur\w*|\bliquidation|\bcreditor\s+protection|\bconcordato|\bconcurso\s+de\s+acreedores|\bredressement\s+judiciaire|\brecuperacao\s+judicial|\bfaillis\w*|\bsurseance"),
    rule(PLAN, 0, r"\b(?:lost|losing)\s+(?:a|our|the|two|three|one\s+of\s+our|\w+)\s+(?:\w+\s+){0,2}?(?:clients?|customers?|contracts?|accounts?|tenants?)\b|\blet\s+(?:\w+\s+){0,2}?(?:people|staff|employees|workers|guys)\s+go|\blaid\s+off|\blayoffs?\b|\b(?:client|customer|customers|clients)\s+(?:\w+\s+){0,2}?(?:hasn't|haven't|has\s+not|have\s+not)\s+paid\s+(?:us|me)"),
    rule(PLAN, 0, r"\b(?:can|could|may)\s+(?:we|i)\s+(?:please\s+)?(?:pay|settle|send)\s+(?:\S+\s+){0,3}?(?:later|next\s+month|in\s+(?:two|three|four|\d|installments|instalments|parts|stages|chunks|a\s+few|a\s+couple)|over\b|monthly|weekly|half|part\b|some\s+now|bit\s+by\s+bit)|\bbit\s+by\s+bit\b|\blittle\s+by\s+little\b|\bin\s+stages\b"),
    // French
    rule(PLAN, 0, r"\becheancier|\bplan\s+de\s+(?:paiement|remboursement|reglement)|\bpaiement\s+(?:en\s+)?(?:plusieurs\s+fois|echelonne|fractionne|partiel)|\ben\s+(?:deux|trois|quatre|cinq|six|plusieurs|\d+)\s+(?:fois|versements|mensualites|echeances|tranches|paiements)|\bmensualit\w*|\b(?:etal|echelonn|fractionn)\w*|\bdelai\s+(?:de\s+paiement\s+)?(?:supplementaire|additionnel)|\b(?:accorder|octroyer|donner|avoir|obtenir|demander)\s+(?:un\s+|quelques\s+)?(?:\w+\s+)?(?:delai|report|jours\s+de\s+plus|semaines\s+de\s+plus)|\bplus\s+de\s+temps|\bun\s+peu\s+de\s+temps|\bdifficult\w*\s+(?:financi|de\s+tresorerie|economiq|passag)|\b(?:problemes?|tensions?)\s+de\s+tresorerie|\btresorerie\s+(?:tendue|difficile|limitee)|\breport(?:er|ez)?\s+(?:le\s+|notre\s+)?(?:paiement|reglement|echeance)|\bacompte|\bla\s+moitie\s+(?:maintenant|ce\s+mois|aujourd|d'abord)|\ble\s+solde\s+(?:le\s+mois\s+prochain|plus\s+tard)").foreign(),
    // German
    rule(PLAN, 0, r"\bratenzahlung\w*|\bratenplan|\bin\s+(?:\w+\s+)?raten\b|\bmonatsrate\w*|\bteilzahlung\w*|\bteilbetrag|\bzahlungsaufschub|\bstundung|\bstunden\s+sie|\bmehr\s+zeit|\bzahlungsziel\w*\s+(?:\w+\s+){0,3}?(?:verlanger|verschieb|strecken)|\bverlangerung|\baufschub|\bengpass|\bzahlungsschwierig\w*|\bfinanzielle\w*\s+(?:schwierig\w*|probleme|lage|engpass|notlage)|\bliquiditatsengpass|\bliquiditatsprobleme|\bzahlungsplan|\bhalfte\s+(?:\w+\s+)?(?:jetzt|sofort|diesen|heute)|\bspater\s+(?:zahlen|begleichen|uberweisen)|\b(?:zahlung|rechnung)\s+(?:\S+\s+){0,2}?(?:verschieben|aufschieben)").foreign(),
    // Spanish
    rule(PLAN, 0, r"\bplan\s+de\s+pagos?|\bcuotas\b|\ba\s+plazos|\ben\s+(?:dos|tres|cuatro|cinco|seis|\d+|varias|varios)\s+(?:partes|pagos|veces|cuotas|plazos|mensualidades)|\bfraccion\w*|\baplaz\w*|\bmas\s+tiempo|\bun\s+poco\s+de\s+tiempo|\bprorroga|\bla\s+mitad\b|\bdificultad\w*\s+(?:economic|financier|de\s+pago)|\bproblemas\s+(?:economic|financier|de\s+liquidez|de\s+caja|de\s+tesoreria)|\bno\s+(?:podemos|puedo|podremos)\s+pagar\s+(?:\S+\s+){0,3}?(?:completo|todo|total|entero|ahora|de\s+una\s+vez|en\s+este\s+momento)|\bdividir\w*|\bpagos\s+(?:mensuales|parciales)|\bpago\s+parcial|\bpostergar|\bposponer|\bretrasar\s+(?:el\s+)?pago").foreign(),
    // Italian
    rule(PLAN, 0, r"\brateizz\w*|\ba\s+rate\b|\bin\s+(?:\w+\s+)?rate\b|\brate\s+mensili|\bdilazion\w*|\bpiu\s+tempo|\bproroga|\bdifficolta\s+(?:\w+\s+)?(?:economic|finanziar)|\bproblemi\s+(?:di\s+liquidita|economici|finanziari)|\bpagamento\s+parziale|\bmeta\s+(?:ora|adesso|subito|questo\s+mese|oggi)|\b(?:rimand|posticip|rinvi)\w*\s+(?:il\s+)?pagamento|\bposticip\w*|\bdividere\s+(?:\w+\s+)?(?:in|l'importo)").foreign(),
    // Portuguese
    rule(PLAN, 0, r"\bparcel\w*|\bprestac(?:oes|ao)|\bmais\s+(?:prazo|tempo)|\bprorrog\w*|\bdificuldade\w*\s+(?:financeir|economic)|\bmetade\s+agora|\badiar|\badiamento|\bpagamento\s+parcial|\bem\s+(?:duas|tres|quatro|\d+)\s+vezes").foreign(),
    // Dutch
    rule(PLAN, 0, r"\bbetalingsregeling|\btermijnen|\bin\s+(?:\w+\s+)?delen\b|\bgespreid\w*|\bspreiden|\buitstel|\bmeer\s+tijd|\bfinanciel\w*\s+(?:problemen|moeilijkheden|situatie|krapte)|\bde\s+helft\s+nu|\bdeelbetaling|\bafbetal\w*|\bkrap\s+bij\s+kas").foreign(),

    // ───────────────────────────── promise_to_pay ─────────────────────────────
    rule(PROMISE, N | I, r"\b(?:will|'ll|shall|going\s+to|plan\s+to|planning\s+to|intend\s+to|expect\s+to|aim\s+to|about\s+to|able\s+to|ready\s+to|we'd\s+like\s+to|can)\s+(?:\w+\s+){0,2}?(?:pay|settle|remit|wire|transfer|clear)\b")
        .after_veto(r"^\s*(?:you\s+)?(?:a\s+)?(?:visit|attention)")
        .match_veto(r"^can\s+(?:i|we|you)\b"),
    rule(PROMISE, N | I, r"\b(?:will|'ll|shall|going\s+to|about\s+to)\s+(?:\w+\s+){0,2}?(?:send|mail|issue|release|process|cut|initiate|submit|make|put\s+through|push\s+through|schedule|wire|drop)\b")
        .after_veto(r"^\s*(?:you\s+|over\s+|across\s+)?(?:an?\s+|the\s+|our\s+|my\s+|your\s+|this\s+|that\s+|some\s+)?(?:\w+\s+)?(?:{DOCS}|sure|a\s+note|decision|call|mistake|changes?|it\s+to\s+(?:our|my|the|him|her)|it\s+(?:on|along|over)\s+to|this\s+to\s+(?:our|my|the)|it\s+right)\b"),
    rule(PROMISE, N | I, r"\b(?:will|'ll|going\s+to|about\s+to)\s+(?:\w+\s+)?(?:take\s+care\s+of\s+(?:it|this|that|the\s+(?:payment|invoice|bill|balance))|sort\s+(?:it|this|that)(?:\s+out)?|handle\s+(?:it|this|that|the\s+payment)|get\s+(?:it|this|that|you|the\s+\w+)\s+(?:\w+\s+)?(?:paid|out|sorted|over|processed|done|to\s+you|settled)|get\s+(?:\w+\s+)?paid|have\s+(?:it|this|that|the\s+\w+)\s+(?:\w+\s+)?(?:paid|to\s+you|out|over|sorted|sent|processed|settled)|have\s+(?:the\s+|your\s+)?(?:payment|money|funds|check|cheque)\b|get\s+(?:it|this|that)\s+sorted)")
        .after_veto(r"^\s*(?:out\s+)?(?:with\s+(?:the|our|my|him|her|them)|internally)\b"),
    rule(PROMISE, N | I, r"\b(?:will|'ll|going\s+to)\s+make\s+sure\s+(?:\S+\s+){0,3}?(?:paid|settled|sent|processed|goes\s+out|pay|payment)\b|\b(?:payment|it|check|cheque|transfer|wire|invoice|funds)\s+(?:\S+\s+){0,3}?(?:is|are|'s)\s+(?:being|currently\s+being|now\s+being)\s+(?:processed|paid|sent|released|issued|cut|wired|transferred|prepared)|\bshould\s+have\s+(?:it|this|that|the\s+\w+)\s+(?:\w+\s+)?(?:paid|sent|out|processed|settled)\b|\bshould\s+be\s+(?:paid|settled|sent|processed|released)\s+(?:by|in|on|next|this|tomorrow|within|before)\b"),
    rule(PROMISE, N | I, r"\b(?:the|our)\s+(?:\w+\s+)?queue\s+for\s+(?:payment|processing)|\bput\s+(?:it|this|that|the\s+payment)\s+through\b|\b(?:will|'ll|going\s+to)\s+(?:get|have|ask)\s+(?:my|our|the)\s+\w+\s+to\s+(?:pay|settle|process|send|release)\b|\b(?:will|'ll)\s+do\s+(?:it|that|this|the\s+payment|the\s+transfer)\s+(?:online|today|tonight|tomorrow|now|on|by|this|next|first|right)"),
    rule(PROMISE, 0, r"\b(?:but|and)\s+(?:we\s+|i\s+)?will\s+(?:on|by|next|this|tomorrow|today|before|shortly|soon|asap)\b"),
    rule(PROMISE, N, r"\b(?:we|i)\s+can\s+do\s+(?:it|that|this)\s+(?:on|by|in|within|next|this|tomorrow|today|{WEEKDAY})\b").after_veto(r"^[^.!?\n]*\?"),
    rule(PROMISE, N | I, r"\b(?:will|'ll)\s+have\s+(?:a|the|your)\s+(?:check|cheque|payment)\s+(?:ready\s+)?(?:for\s+you|ready)\b"),
    rule(PROMISE, N | I, r"\b(?:will|'ll|going\s+to|gonna)\s+[^.!?\n]*\b(?:drop|bring)\s+(?:off\s+|by\s+|over\s+|in\s+)?(?:a|the|your)\s+(?:check|cheque|payment)\b"),
    rule(PROMISE, N | I, r"\b(?:can|could)\s+(?:\w+\s+)?get\s+(?:it|this|that|the\s+(?:payment|money|funds|check|cheque))\s+(?:\w+\s+)?(?:paid|out|over|to\s+you|sent|processed|settled)").match_veto(r"^(?:can|could)\s+(?:you|we|i)\b"),
    rule(PROMISE, N | I, r"\b(?:will|'ll|shall|is\s+going\s+to|are\s+going\s+to)\s+(?:\w+\s+)?be\s+(?:\w+\s+)?(?:paid|settled|sent|released|processed|remitted|wired|transferred|mailed|issued|cleared|made|in\s+the\s+mail|on\s+(?:its|the)\s+way|taken\s+care\s+of|scheduled|queued|approved\s+(?:and|for))\b")
        .after_veto(r"^\s*(?:to|for\s+approval|over\s+to)\s+(?:our|the|my)\s+(?:ap|accounts|finance|team|boss|manager|accountant|bookkeeper|controller|department|approver)"),
    rule(PROMISE, N, r"\b(?:payment|payments|it|check|cheque|checks|wire|transfer|funds|money|this|that|ach|eft)\s*(?:\S+\s+){0,3}?(?:goes|go|will\s+go|'ll\s+go|is\s+going|are\s+going|gets\s+sent|will\s+get\s+sent)\s+out\b|\b(?:will|'ll)\s+(?:\w+\s+)?go\s+(?:out|next|on|this|tomorrow|today|with|in|by|{WEEKDAY})\b")
        .after_veto(r"^\s*(?:of\s+(?:the\s+)?office|for\s+(?:lunch|the\s+day))"),
    rule(PROMISE, N | I, r"\b(?:payment|it|this|that|invoice|transfer|wire|check|cheque|ach|funds|bill|inv\S*)\s*(?:\S+\s+){0,3}?(?:is|are|'s|has\s+been|have\s+been|been)\s+(?:now\s+|already\s+|all\s+)?(?:scheduled|queued|set\s+up|lined\s+up|slated|earmarked|booked|approved\s+(?:and\s+(?:queued|scheduled|will|paid|sent|released|ready)|for\s+payment)|in\s+(?:the|our|this|next|tomorrow's|\w+'s)\s+(?:\w+\s+)?(?:run|batch|cycle|(?:payment|pay|check|cheque|ap|payables)\s+queue))\b").after_veto(r"^\s*(?:for\s+)?(?:approval|review|sign-?off)"),
    rule(PROMISE, N, r"\bscheduled\s+(?:payment|for\s+payment|it|the\s+payment|for\s+(?:the|next|this|our|\d|month|end|eom|tomorrow|today|{WEEKDAY}|{MONTHS}))|\bqueued\s+(?:for\s+(?:payment|the|our|next|this|\d|{WEEKDAY}|{MONTHS})|up\b)|\bit's\s+scheduled|\bpayment\s+date\b|\bin\s+(?:the|our|this|next|tomorrow's|\w+'s)\s+(?:\w+\s+)?(?:check|cheque|payment|pay|ap|payables)\s+(?:run|batch|cycle)|\b(?:next|upcoming)\s+(?:\w+\s+)?(?:check|cheque|payment|pay|ap|payables)\s+(?:run|batch|cycle)"),
    rule(PROMISE, N, r"\b(?:i'm|we're|i\s+am|we\s+are|they're|they\s+are)\s+(?:\w+\s+)?(?:paying|releasing|wiring|transferring|settling|cutting\s+(?:a|the|you\s+a)|sending\s+(?:the\s+|your\s+|you\s+(?:the\s+|a\s+)?)?(?:payment|check|cheque|money|funds|wire|transfer)|mailing\s+(?:the\s+|a\s+|you\s+a\s+)?(?:check|cheque|payment)|processing\s+(?:the\s+|your\s+)?(?:payment|invoice|it)|putting\s+(?:it|the\s+payment)\s+through|getting\s+(?:it|this|that)\s+(?:paid|out|processed))"),
    rule(PROMISE, 0, r"\b(?:i've|we've|i\s+have|we\s+have)\s+(?:just\s+)?(?:set|scheduled|queued|approved|arranged|booked|lined\s+up|put)\s+(?:\S+\s+){0,3}?(?:to\s+go\s+out|for\s+(?:payment|tomorrow|today|next|the\s+\d|\d|{WEEKDAY})|in\s+(?:the|our|next|tomorrow's|\w+'s)\s+(?:\w+\s+)?(?:run|batch|cycle))"),
    rule(PROMISE, 0, r"\bcut(?:ting)?\s+(?:a\s+|the\s+|your\s+|you\s+a\s+)?(?:checks?|cheques?)\b"),
    rule(PROMISE, 0, r"\b(?:it's|its|it\s+is|payment\s+is|money\s+is|funds\s+are)\s+(?:\w+\s+)?(?:coming|forthcoming)\b|\bgood\s+for\s+it\b"),
    rule(PROMISE, N, r"\byou(?:'ll|\s+will)\s+(?:\w+\s+)?(?:get|receive|have|see)\s+(?:it|paid|your\s+(?:money|payment|check|cheque|funds)|the\s+(?:payment|money|funds|check|cheque|transfer|wire|balance)|payment|a\s+(?:check|cheque|payment|transfer|wire))\b"),
    rule(PROMISE, N, r"\bpay(?:ing)?\s+(?:it|this|that|the\s+\w+|you|in\s+full)\s+(?:\S+\s+)?(?:today|tonight|tomorrow|on\s+(?:{WEEKDAY}|the\s+\d)|by\s+(?:{WEEKDAY}|the\s+end|end|eom|\d)|this\s+week|next\s+week|asap|first\s+thing)")
        .before_veto(r"(?:can|could|may)\s+(?:i|we)\s+$"),
    // French
    rule(PROMISE, N | I, r"\b(?:allons|vais|va|vont)\s+(?:\w+\s+){0,2}?(?:payer|regler|virer|verser|proceder|effectuer|envoyer\s+(?:le|un|votre)\s+(?:paiement|virement|cheque|reglement)|lancer\s+le\s+(?:paiement|virement)|faire\s+le\s+(?:virement|paiement|necessaire))|\b(?:paierons|payerons|reglerons|paierai|payerai|reglerai|verserons|virerons|effectuerons|procederons|enverrons|solderons)\b|\bser(?:a|ont)\s+(?:\w+\s+){0,2}?(?:paye|regle|vire|verse|effectue|envoye|execute|emis|lance|solde|honore|mis\s+en\s+paiement)e?s?\b|\bpartir(?:a|ont)\b").foreign(),
    rule(PROMISE, N, r"\b(?:paiement|virement|reglement)\s+(?:\S+\s+){0,3}?(?:est\s+)?(?:prevu|programme|planifie|interviendra)|\bmis\s+en\s+paiement|\bmettons\s+en\s+paiement|\b(?:je|nous|on)\s+(?:vous\s+)?(?:regle|reglons|paie|payons|vire|virons|verse|versons)\s+(?:\S+\s+){0,3}?(?:demain|lundi|mardi|mercredi|jeudi|vendredi|la\s+semaine|le\s+\d|cette|d'ici|dans|avant|aujourd|fin)|\bje\s+m'en\s+occupe").foreign(),
    // German
    rule(PROMISE, N | I, r"\b(?:wird|werden)\s+(?:\S+\s+){0,5}?(?:angewiesen|uberwiesen|ueberwiesen|bezahlt|beglichen|gezahlt|ausgeglichen|veranlasst|ausgefuhrt)\b|\b(?:werden|werde)\s+(?:\S+\s+){0,5}?(?:bezahlen|begleichen|uberweisen|ueberweisen|zahlen|anweisen|ausgleichen|veranlassen)\b|\b(?:uberweisung|ueberweisung|zahlung|begleichung)\s+(?:\S+\s+){0,3}?(?:erfolgt|erfolgen|geht|gehen|wird|ist\s+(?:fur|zum|geplant|vorgesehen|terminiert))").foreign(),
    rule(PROMISE, N | I, r"\b(?:uberweisen|ueberweisen|zahlen|begleichen|bezahlen)\s+(?:wir|ich)\b|\b(?:wir|ich)\s+(?:uberweisen|ueberweisen|zahlen|bezahlen|begleichen)\s+(?:\S+\s+){0,4}?(?:morgen|heute|am|bis|nachste|naechste|diese|ende|innerhalb|in|sofort|umgehend|zeitnah|montag|dienstag|mittwoch|donnerstag|freitag)|\bkummer\w*\s+(?:mich|uns)\s+(?:\S+\s+){0,2}?(?:darum|drum)").after_veto(r"^[^.!?\n]*\bmelde").foreign(),
    // Spanish
    rule(PROMISE, N, r"\b(?:pagaremos|pagare|abonaremos|transferiremos|realizaremos|procederemos|enviaremos|liquidaremos|efectuaremos|ingresaremos|saldaremos|abonare|transferire)\b|\bharemos\s+(?:el|la)\s+(?:pago|transferencia|ingreso)|\b(?:vamos|voy|van|va)\s+a\s+(?:\w+\s+)?(?:pagar|abonar|transferir|hacer\s+(?:el|la)\s+(?:pago|transferencia)|realizar\s+(?:el|la)\s+(?:pago|transferencia)|proceder\s+al\s+pago|liquidar|saldar|ingresar)|\bse\s+(?:le\s+)?(?:\w+\s+)?(?:pagara|abonara|realizara|hara|efectuara|transferira|enviara|liquidara|ingresara|procesara)\b").foreign(),
    rule(PROMISE, N, r"\b(?:hacemos|realizamos|efectuamos|mandamos|enviamos|pagamos|abonamos|transferimos)\s+(?:(?:el|la)\s+(?:pago|transferencia|ingreso)\s+)?(?:\S+\s+){0,4}?(?:manana|hoy|el\s+(?:lunes|martes|miercoles|jueves|viernes|\d)|esta\s+semana|la\s+semana|la\s+proxima|antes\s+del|a\s+(?:fin|final|finales)|en\s+\w+\s+dias|dentro)|\b(?:el\s+)?pago\s+(?:\S+\s+){0,3}?(?:se\s+hara|se\s+realizara|esta\s+(?:programado|previsto)|saldra|sale)").foreign(),
    // Italian
    rule(PROMISE, N, r"\b(?:pagheremo|paghero|salderemo|saldero|provvederemo|provvedero|effettueremo|effettuero|disporremo|invieremo|verseremo|bonificheremo|liquideremo)\b|\bfaremo\s+il\s+(?:bonifico|pagamento)|\b(?:verra|verranno|sara|saranno)\s+(?:\w+\s+)?(?:pagat|saldat|effettuat|dispost|inviat|bonificat|versat|eseguit|liquidat|emess)[oaie]\b|\bpartiranno\b|\b(?:bonifico|pagamento)\s+(?:\S+\s+){0,3}?(?:e\s+)?(?:previsto|programmato|pianificato|in\s+partenza)").foreign(),
    // Portuguese
    rule(PROMISE, N, r"\b(?:pagaremos|pagarei|efetuaremos|realizaremos|depositaremos|transferiremos|quitaremos|acertaremos)\b|\bfaremos\s+o\s+(?:pagamento|deposito|pix|transferencia)|\b(?:vamos|vou|vai|vao)\s+(?:\w+\s+)?(?:pagar|efetuar|fazer\s+o\s+(?:pagamento|deposito|pix|transferencia)|depositar|transferir|quitar|acertar)|\b(?:sera|serao)\s+(?:\w+\s+)?(?:feit|pag|efetuad|realizad|depositad|transferid|quitad|enviad)[oa]s?\b|\b(?:pagamento|transferencia|deposito|pix)\s+(?:\S+\s+){0,3}?(?:esta\s+)?(?:agendad|programad|previst)").foreign(),
    // Dutch
    rule(PROMISE, N | I, r"\b(?:wordt|worden|zal|zullen)\s+(?:\S+\s+){0,4}?(?:betaald|overgemaakt|voldaan|overgeboekt|verstuurd|uitbetaald)\b|\b(?:gaan|ga|gaat|zullen|zal)\s+(?:\S+\s+){0,4}?(?:betalen|overmaken|voldoen|overboeken|storten)\b|\b(?:we|wij|ik)\s+(?:betalen|maken|boeken)\s+(?:\S+\s+){0,4}?(?:morgen|vandaag|volgende|deze|vrijdag|maandag|dinsdag|woensdag|donderdag|zaterdag|zondag|over|binnen|op|voor|eind|uiterlijk)|\bmaken\s+(?:we|wij|ik)\s+(?:\S+\s+){0,3}?over\b|\bbetalen\s+(?:we|wij|ik)\b|\bbetaling\s+(?:\S+\s+){0,3}?(?:staat\s+(?:gepland|klaar|ingepland)|is\s+ingepland)").foreign(),

    // ───────────────────────────── wrong_contact ─────────────────────────────
    rule(WRONG, 0, r"\bwrong\s+(?:\w+\s+){0,2}?(?:person|number|contact|guy|lady|man|woman|company|business|address|email|e-mail|department|individual|people|party|recipient)\b|\b(?:you've\s+got|you\s+have|you\s+got|you've|have|reached|called|dialed|dialled|emailing|calling|contacting|got)\s+the\s+wrong\b"),
    rule(WRONG, 0, r"\bnot\s+(?:really\s+|actually\s+)?(?:the|a|an|your)\s+(?:right|correct|appropriate|proper|best|relevant)\s+(?:person|contact|one|people|department|address|individual|recipient|party)|\b(?:i'm|i\s+am|we're|we\s+are|this\s+is)\s+not\s+(?:the|a|your)\s+(?:\w+\s+){0,2}?(?:contact|person|one|department|recipient|holder|owner|customer|client|payer|debtor)\b|\b(?:former|previous|old|ex-?)\s+(?:employer|company|job|business|workplace|tenant|owner|employee)\b"),
    rule(WRONG, 0, r"\bno\s+longer\s+(?:work|with|at|employed|handl|responsible|in\s+charge|here|deal|the\s+(?:contact|person|owner)|part\s+of|manage|look\s+after)"),
    rule(WRONG, 0, r"\b(?:nobody|no\s+one|no-one)\s+(?:called|named|by\s+the\s+name(?:\s+of)?)\s+\w+\s+(?:works|is|lives)\s+(?:here|at\s+this)"),
    rule(WRONG, 0, r"\bpredecessor\b|\bmeant\s+for\s+(?:someone|somebody|another|a\s+different|my\s+(?:predecessor|colleague|former)|the\s+previous)"),
    rule(WRONG, 0, r"\bremove\s+me\s+from\s+(?:the\s+|this\s+)?(?:cc|thread|chain|loop|conversation|e-?mail\s+chain)\b|\b[a-z]+\s+in\s+(?:finance|accounts|ap|accounting|billing|payables)\s+(?:is|will\s+be)\s+(?:handling|dealing\s+with|taking\s+care\s+of)\b"),
    rule(WRONG, 0, r"\bmoved\s+on\s+from\b|\bmy\s+(?:replacement|successor)\b|\breplaced\s+me\b|\b(?:we're|we\s+are|this\s+is|i'm|i\s+am)\s+(?:a|an)\s+(?:different|another|separate|unrelated)\s+(?:company|business|person|firm|entity)\b|\bi\s+think\s+you\s+(?:want|mean|need)\b|\b(?:i|we)\s+(?:don't|do\s+not)\s+(?:handle|deal\s+with|manage|look\s+after|take\s+care\s+of|do)\s+(?:the\s+|any\s+)?(?:invoices|billing|payments|bills|accounts|finances|payables)\b|\b(?:this\s+is|it's)\s+(?:a|my)\s+(?:personal|private|home|residential)\s+(?:number|phone|line|cell|mobile)\b|\b(?:don't|do\s+not)\s+(?:own|have|run)\s+a\s+(?:business|company)\b"),
    rule(WRONG, 0, r"\b(?:sent|came|addressed|emailed|delivered)\s+(?:to\s+(?:me|us)\s+)?(?:by\s+mistake|in\s+error|by\s+accident|wrongly|erroneously)|\b(?:isn't|is\s+not|not|aren't|are\s+not)\s+with\s+(?:the|this|our|us)\s*(?:company|firm|business|practice)?\s*(?:any\s?more|anymore)\b"),
    rule(WRONG, 0, r"\b(?:don't|doesn't|do\s+not|does\s+not)\s+work\s+(?:\S+\s+){0,4}?(?:any\s?more|anymore|here|there)\b|\b(?:i|he|she|they)\s+(?:haven't|hasn't|have\s+not|has\s+not)\s+worked\s+(?:\S+\s+){0,3}?(?:since|for|in)\b"),
    rule(WRONG, 0, r"\b(?:i|he|she|they|we)(?:'ve|'s|\s+have|\s+has)?\s+(?:\w+\s+)?(?:left|quit|resigned\s+from|departed|moved\s+on\s+from)\s+(?:the\s+(?:company|firm|business|organi[sz]ation|practice|team|role|position|job)|[a-z0-9&.'-]+(?:\s+[a-z0-9&.'-]+){0,4}\s+(?:in|last|back|at|on|over|since|about|a|two|three|several|earlier)\b|(?:like\s+|about\s+|over\s+)?(?:a|two|three|four|five|six|several|some|\d+)\s+(?:\w+\s+)?(?:weeks?|months?|years?)\s+ago)")
        .match_veto(r"\b(?:left|quit)\s+(?:a|an|you|your|it|them|him|her|that|this|some|the\s+(?:check|cheque|payment|invoice|message))\s+(?:\w+\s+)?(?:voicemail|message|msg|note|check|cheque|payment|invoice|form|vm|comment|review|copy|email|e-mail)"),
    rule(WRONG, 0, r"\b(?:left|quit|departed)\s+(?:the\s+)?(?:company|firm|business|organi[sz]ation|practice)\b|\b(?:retired|passed\s+away|deceased|no\s+longer\s+with\s+us)\b|\bis\s+on\s+(?:maternity|paternity|parental)\s+leave\b"),
    rule(WRONG, 0, r"\bnot\s+me\b|\b(?:isn't|wasn't|it's\s+not|that's\s+not|this\s+is\s+not)\s+(?:me|mine|my\s+(?:invoice|account|business|company|bill|department))\b"),
    rule(WRONG, W, r"\bnot\s+(?:really\s+)?my\s+(?:department|job|area|responsibility|remit|company|account|business|role|division|team)\b|\bnot\s+(?:responsible|in\s+charge)\s+for\s+(?:\w+\s+){0,2}?(?:payments?|billing|invoices|accounts|ap|bills|this)"),
    rule(WRONG, W, r"\byou(?:'ll|'d|\s+will|\s+would)?\s+(?:want|need|have|has|should|must|might\s+want|may\s+want)\s+to\s+(?:talk|speak|call|contact|reach|email|e-mail|get\s+in\s+touch|write|try)\b|\byou\s+(?:want|need)\s+(?:our\s+|the\s+|my\s+|their\s+)?(?:accounts|ap\b|a/p|billing|finance|bookkeep\w*|accountant|payables|office|head\s+office|other|parent|corporate)"),
    rule(WRONG, W, r"\b(?:send|sent|forward|direct|redirect|address|route|email|e-mail|contact|use|write\s+to|reach|try|update|change|cc|copy|go(?:es)?\s+to|should\s+(?:now\s+)?go\s+to|encaminh\w*|envi\w*|mand\w*|senden|schicken|richten|stuur|invia\w*|contatt\w*|contact\w*)\b[^\n?]*?{ROLEMAIL}"),
    rule(WRONG, W, r"\b(?:instead|going\s+forward|from\s+now\s+on|in\s+future|in\s+the\s+future|desormais|dorenavant|kunftig|ab\s+sofort|de\s+ahora\s+en\s+adelante|d'ora\s+in\s+poi|daqui\s+para\s+a\s+frente|voortaan)\b[^\n?]*?{EMAIL}|{EMAIL}[^\n?]*?\b(?:instead|going\s+forward|from\s+now\s+on|in\s+future)\b"),
    rule(WRONG, W, r"\b(?:please\s+)?(?:contact|call|email|e-mail|reach\s+out\s+to|speak\s+(?:to|with)|talk\s+to|get\s+in\s+touch\s+with|direct\s+(?:this|it|these|them|invoices|all)\s+to|send\s+(?:this|it|these|them|invoices|reminders|all\s+\w+)\s+to|forward\s+(?:this|it|these|them)\s+to|redirect\s+(?:this|it|these|them)\s+to|address\s+(?:this|it|these|them)\s+to)\s+(?:our|my|their|his|her|the)\s+(?:\w+\s+){0,2}?(?:accountant|bookkeeper|accounts|ap\b|a/p|finance|billing|payables|office|controller|cfo|parent|head\s+office|owner|manager|department|team|husband|wife|boss|colleague|corporate|headquarters|hq)")
        .before_veto(r"\b(?:i|we|i'll|we'll|will|let\s+me|going\s+to|need\s+to|have\s+to|i'm|we're)\s*$"),
    rule(WRONG, W, r"\b(?:is|are)\s+(?:now\s+|all\s+)?(?:handled|managed|processed|paid|dealt\s+with|taken\s+care\s+of)\s+by\s+(?:our|the|my|their|a)\s+(?:\w+\s+){0,2}?(?:parent|head\s+office|corporate|hq|headquarters|accountant|bookkeeper|team|department|company|office|firm)"),
    rule(WRONG, W, r"\b(?:the\s+)?(?:owner|landlord|tenant|my\s+boss|head\s+office|parent\s+company|corporate|hq|headquarters|my\s+accountant|our\s+accountant|my\s+bookkeeper|our\s+bookkeeper)\s+(?:pays|handles|takes\s+care\s+of|deals\s+with|looks\s+after)\s+(?:these|those|this|the\s+(?:bills|invoices|payments|billing))"),
    rule(WRONG, W, r"\b(?:handles|manages|deals\s+with|takes\s+care\s+of|looks\s+after|is\s+in\s+charge\s+of|is\s+responsible\s+for|does|runs)\s+(?:all\s+|our\s+|the\s+)?(?:\w+\s+)?(?:ap|a/p|accounts\s+payable|billing|invoices|payments|vendor\s+payments|payables|bills|accounting|the\s+books|books|finances?)\s+(?:now|these\s+days|going\s+forward|from\s+now\s+on|instead)\b|\b(?:i'm|i\s+am|he's|she's|he\s+is|she\s+is|[a-z]+\s+is)\s+(?:now\s+)?the\s+(?:new\s+)?(?:ap|a/p|billing|accounts|finance|main|primary|right)\s+(?:\w+\s+)?(?:contact|person|manager)\s+now\b"),
    rule(WRONG, 0, r"\btaken\s+over\s+(?:\w+\s+)?(?:accounts|role|position|duties|responsibilit\w*|job|portfolio)|\b(?:replaced|succeeded|took\s+over\s+from)\s+(?:\w+\s+)?(?:as|him|her)\b"),
    rule(WRONG, W, r"\b(?:remove|take)\s+[a-z]+\s+(?:[a-z]+\s+)?(?:off|from)\s+(?:this|the|your)\s+(?:thread|e-?mail\s+chain|chain|cc|cc\s+list|loop|conversation|distribution\s+list|email)")
        .match_veto(r"^(?:remove|take)\s+(?:me|us|myself)\b"),
    rule(WRONG, W, r"\bupdate\s+(?:your|the)\s+(?:records|contact|file|system|details|email|address|billing\s+contact|information|info)\b"),
    rule(WRONG, 0, r"\b(?:was|were|has\s+been|have\s+been|got)\s+(?:acquired|bought\s+out|bought|taken\s+over|merged|sold)\b|\bacquired\s+by\b|\bunder\s+new\s+(?:ownership|management)"),
    rule(WRONG, 0, r"\b(?:i'm|i\s+am)\s+(?:just\s+|only\s+)?(?:the|a|an)\s+(?:receptionist|intern|temp|assistant|office\s+assistant|cleaner|tenant|new\s+tenant|nanny|babysitter|neighbou?r|contractor|volunteer|secretary|student)\b|\b(?:i'm|i\s+am)\s+(?:just\s+|only\s+)?in\s+(?:marketing|sales|operations|it|hr|engineering|design|customer\s+service|support|production|the\s+warehouse)\b"),
    rule(WRONG, 0, r"\bresiden(?:tial|ce|cial|cia)\b|\b(?:nobody|no\s+one|no-one|noone)\s+(?:here\s+|works\s+here\s+)?(?:by|with|called|named)\s+(?:that|this)\s+name|\bthere's\s+no\s+(?:one|body)\s+(?:here\s+)?(?:by|named|called)|\bno\s+(?:\w+\s+)?(?:here|at\s+this\s+number)\s+by\s+that\s+name"),
    rule(WRONG, 0, r"\b(?:husband|wife|son|daughter|father|mother|dad|mom|mum|brother|sister|partner|ex|landlord)'s\s+(?:business|company|account|shop|number|phone|invoice|bill|firm)\b"),
    rule(WRONG, 0, r"\b(?:invoices|bills|billing|reminders|these|it|this|payments?|statements)\s+(?:\S+\s+){0,4}?(?:go|goes)\s+to\s+(?:\S+\s+){0,6}?not\s+me\b"),
    rule(WRONG, W, r"\b(?:invoices|bills|billing|reminders|these|payments?|statements|all\s+(?:vendor\s+)?invoices)\s+(?:\S+\s+){0,3}?(?:should|must|need\s+to|needs\s+to)\s+(?:now\s+|all\s+)?(?:go|be\s+(?:sent|addressed|directed|emailed))\s+to\b"),
    // French
    rule(WRONG, 0, r"\bne\s+travaill\w*\s+plus\b|\bne\s+fai\w*\s+plus\s+partie|\bn(?:'|e\s+)(?:est|etes|suis|sommes|sont)\s+plus\s+(?:chez|dans|en\s+poste|avec|employe|salarie|responsable|le\s+contact|la\s+personne|charge)|\ba\s+quitte\s+(?:la|l'|notre|cette|le)|\b(?:j'ai|il\s+a|elle\s+a)\s+quitte\b|\bmauvais\w*\s+(?:numero|destinataire|interlocut\w+|contact|personne|adresse|service)|\bpas\s+(?:la|le)\s+bon(?:ne)?\s+(?:personne|interlocut\w+|contact|destinataire|service|numero|adresse)|\bce\s+n'est\s+pas\s+(?:moi|a\s+moi|mon\s+(?:ressort|service|role)|la\s+bonne)|\bje\s+ne\s+suis\s+(?:pas|plus)\s+(?:la\s+personne|le\s+bon|la\s+bonne|responsable|en\s+charge|concern|le\s+contact|votre\s+interlocut)|\bvous\s+vous\s+etes\s+trompe|\bfaux\s+numero|\berreur\s+de\s+(?:numero|destinataire|personne)|\bs'occupe\s+(?:desormais|maintenant|dorenavant)|\ba\s+pris\s+sa\s+retraite|\best\s+partie?\s+a\s+la\s+retraite").foreign(),
    rule(WRONG, W, r"\b(?:merci|veuillez|priere)\s+de\s+(?:\w+\s+)?(?:contacter|vous\s+adresser|vous\s+rapprocher|transmettre\s+(?:vos|les|cette|ces)|ecrire\s+a)|\badressez-vous\s+a|\bcontactez\s+(?:plutot|directement)").foreign(),
    // German
    rule(WRONG, 0, r"\barbeit\w*\s+(?:\S+\s+){0,3}?nicht\s+mehr|\bnicht\s+mehr\s+(?:bei|fur|fuer)\s+|\bnicht\s+mehr\s+im\s+(?:unternehmen|haus|hause|betrieb|team)|\bnicht\s+(?:mehr\s+)?(?:zustandig|zustaendig|verantwortlich|der\s+richtige|die\s+richtige|ansprechpartner)|\b(?:hat|habe|haben)\s+(?:\S+\s+){0,3}?verlassen\b|\bfalsch\w*\s+(?:ansprechpartner\w*|person|nummer|adresse|empfanger|kontakt|abteilung)|\bfalsch\s+verbunden|\bausgeschieden|\bin\s+(?:rente|den\s+ruhestand)|\bim\s+ruhestand").foreign(),
    rule(WRONG, W, r"\bwenden\s+sie\s+sich\s+(?:bitte\s+)?(?:direkt\s+)?an\b").foreign(),
    // Spanish
    rule(WRONG, 0, r"\b(?:ya\s+)?no\s+trabaj\w*\s+(?:mas\s+)?(?:en|para|con|aqui|alli|ahi)|\bya\s+no\s+(?:esta|estoy|forma\s+parte|pertenece|trabaj\w*|es\s+(?:el|la)\s+(?:responsable|contacto))|\b(?:numero|persona|contacto|direccion|destinatario|correo)\s+equivocad[oa]|\bse\s+(?:ha\s+)?equivoc\w*|\bequivocad[oa]s?\s+de\s+(?:numero|persona)|\bno\s+soy\s+(?:la|el)\s+(?:persona\s+)?(?:responsable|indicad|correct|adecuad|encargad)|\bno\s+soy\s+(?:yo\s+)?quien\s+(?:paga|gestiona|lleva)|\bno\s+(?:me\s+)?(?:corresponde|encargo|ocupo)\s+(?:yo\s+)?de\b").foreign(),
    rule(WRONG, W, r"\bdirijase\s+a\b|\bdirijanse\s+a\b|\bpongase\s+en\s+contacto\s+con\b|\bcontacte\s+con\b").foreign(),
    // Italian
    rule(WRONG, 0, r"\bnon\s+lavor\w*\s+piu|\bnon\s+(?:e|sono)\s+piu\s+(?:in|con|presso|dipendente|il\s+referente|la\s+referente|responsabile)|\b(?:numero|persona|contatto|indirizzo|destinatario)\s+sbagliat[oa]|\bha(?:i|nno)?\s+sbagliato\s+(?:numero|persona|destinatario)|\bnon\s+sono\s+(?:io\s+)?(?:la\s+persona|il\s+referente|la\s+referente|responsabile|incaricat)|\bnon\s+(?:mi\s+)?occupo\s+(?:io\s+)?(?:di|dei|della|delle)|\bin\s+pensione").foreign(),
    rule(WRONG, W, r"\brivolger\w*\s+a\b|\brivolgetevi\s+a\b|\bcontattare\s+direttamente|\bscrivete\s+a\b").foreign(),
    // Portuguese
    rule(WRONG, 0, r"\bnao\s+sou\s+(?:a|o)\s+(?:pessoa\s+)?(?:responsavel|indicad|cert|corret|encarregad)|\bnao\s+trabalh\w*\s+mais|\bja\s+nao\s+trabalh|\b(?:numero|pessoa|contato|endereco)\s+errad[oa]|\bligou\s+(?:para\s+o\s+)?(?:numero\s+)?errad[oa]|\bengano\b|\bnao\s+e\s+aqui\b|\bnao\s+e\s+(?:comigo|a\s+minha\s+area)").foreign(),
    rule(WRONG, W, r"\bencaminhem\b|\bfavor\s+encaminhar|\bpor\s+favor,?\s+encaminh|\bprocurem?\s+o\s+(?:financeiro|departamento|setor)|\bentrem?\s+em\s+contato\s+com").foreign(),
    // Dutch
    rule(WRONG, 0, r"\bwerk\w*\s+(?:\S+\s+){0,2}niet\s+meer|\bniet\s+(?:meer\s+)?(?:de|het)\s+(?:juiste|goede)\s+(?:persoon|contact|adres|afdeling|contactpersoon)|\bverkeerd\w*\s+(?:nummer|persoon|adres|contact|afdeling)|\bverkeerd\s+verbonden|\bniet\s+(?:meer\s+)?verantwoordelijk|\buit\s+dienst|\bmet\s+pensioen").foreign(),
    rule(WRONG, W, r"\bneem\s+(?:\S+\s+)?contact\s+op\s+met\b").foreign(),

    // ───────────────────────────── question ─────────────────────────────
    rule(QUESTION, 0, r"\b(?:can|could|would|will)\s+(?:you|someone|somebody|anyone|one\s+of\s+you)\s+(?:please\s+|kindly\s+|just\s+|also\s+|possibly\s+)?(?:send|resend|re-send|email|e-mail|text|forward|provide|share|confirm|tell|explain|clarify|break\s+down|let\s+me\s+know|let\s+us\s+know|give\s+me|give\s+us|check|mail|attach|issue|reissue|advise|verify|look\s+up|point|help|walk|update\s+me|call\s+me|show|detail|itemi[sz]e|specify|send\s+over|get\s+me|get\s+us|supply)"),
    rule(QUESTION, 0, r"\b(?:send|resend|re-send|email|e-mail|forward|provide|share|attach|get)\s+(?:me\s+|us\s+|over\s+)?(?:\S+\s+){0,3}?(?:copy|copies|w-?9|w\s?nine|statement|receipt|breakdown|itemi[sz]\w*|backup|documentation|timesheets?|po\s+number|p\.?\s?o\.?\s+number|po\b|purchase\s+order|bank\s+(?:details|info|account)|account\s+(?:details|number|info)|remit(?:tance)?[\s-]to|tax\s+id|ein\b|vat\s+(?:number|id)|invoice\s+number|supporting|proof\s+of\s+(?:delivery|work)|details\s+of|detail\s+on)")
        .before_veto(r"(?:i'll|i\s+will|we'll|we\s+will|i\s+can|we\s+can|i've|we've|i\s+have|we\s+have|i|we)\s+(?:\w+\s+)?$"),
    rule(QUESTION, 0, r"\b(?:need|needs|require|requires|want|requesting|request|missing)\s+(?:me\s+|us\s+|over\s+)?(?:\S+\s+){0,3}?(?:copy|copies|w-?9|w\s?nine|statement|receipt|breakdown|itemi[sz]\w*|backup|documentation|timesheets?|po\s+number|p\.?\s?o\.?\s+number|po\b|purchase\s+order|bank\s+(?:details|info|account)|account\s+(?:details|number|info)|remit(?:tance)?[\s-]to|tax\s+id|ein\b|vat\s+(?:number|id)|invoice\s+number|supporting|proof\s+of\s+(?:delivery|work)|details\s+of|detail\s+on)"),
    rule(QUESTION, 0, r"\b(?:resend|re-send|re-email|send\s+(?:me|us)|email\s+(?:me|us)|forward\s+(?:me|us))\s+(?:\S+\s+){0,3}?(?:invoice|in\s?voice|bill|pdf|it|again|over|that|this)"),
    rule(QUESTION, 0, r"\b(?:tell|give)\s+me\s+(?:the|what)\s+(?:\w+\s+)?(?:amount|balance|total)\b|\bhow\s+much\s+(?:do|does)\s+(?:we|i|my\s+\w+|our\s+\w+)\s+owe\b"),
    rule(QUESTION, 0, r"(?:^|[.!?\n]\s*|\b(?:uh|um|so|and|but|hi|hello|yeah|okay|ok|sorry|also|just|wait|hey|thanks)\s*,?\s+)(?:what|which|who|whom|whose|why|how|where|when)\b[^.!?\n]*\?"),
    rule(QUESTION, 0, r"^\W*(?:(?:uh|um|so|and|but|hi|hello|yeah|okay|ok|sorry|wait|hey|yes|oh|sorry)\W+)*(?:what|which|who|whom|whose|why|how|where)\b[^.!?]*$"),
    rule(QUESTION, 0, r"\bwho\s+(?:is\s+this|are\s+you|is\s+calling|am\s+i\s+(?:speaking|talking)|is\s+this\s+from)|\bwhat\s+(?:company|firm|business|organi[sz]ation)\s+(?:is\s+this|are\s+you|did\s+you\s+say|is\s+calling|are\s+you\s+calling)|\bwhat\s+(?:is|'s|was)\s+(?:this|that|it)\s+(?:for|about|regarding|in\s+reference\s+to)|\bwhich\s+(?:site|job|project|entity|invoice|location|engagement|account|order|property|service|company|office|po|contract|branch|store|clinic|building|address|one)\b|\bwhat's\s+the\s+(?:\w+\s+){0,3}?(?:number|address|amount|reference|for)\b"),
    rule(QUESTION, 0, r"(?:^|[.!?\n]\s*|,\s*|\b(?:and|but|so|also)\s+)(?:is|are|does|do|did|was|were|can|could|should|would|has|have|will)\s+(?:this|that|it|the|these|there|we|i|you|your|our)\b[^.!?\n]*\?"),
    rule(QUESTION, 0, r"\bplease\s+(?:\w+\s+)?(?:send|resend|provide|forward|email|share|confirm|advise|explain|clarify|let\s+me\s+know|let\s+us\s+know|call\s+me|give\s+me\s+a\s+call)|\blet\s+(?:me|us)\s+know\s+(?:what|which|who|how|where|why|when|if|whether)|\b(?:i|we)\s+need\s+to\s+know\b|\b(?:i|we)\s+(?:need|want)\s+(?:to\s+)?(?:understand|clarif)"),
    rule(QUESTION, 0, r"\bremit[\s-]?to\b|\bbank\s+(?:details|account\s+details|info)|\bwire\s+(?:instructions|details)|\bpayment\s+(?:instructions|details|options|methods?|link|portal)|\bhow\s+(?:do|can|should)\s+(?:we|i)\s+pay"),
    rule(QUESTION, 0, r"\b(?:can't|cannot|couldn't)\s+(?:find|locate|open|see|access|download|view|read)\s+(?:the|your|it|this|that|an?|any)\b|\b(?:didn't|did\s+not|won't|doesn't|does\s+not|wouldn't)\s+(?:open|load|download|work)\b|\b(?:never|didn't|did\s+not|haven't|have\s+not|hasn't)\s+(?:\w+\s+)?(?:received|got|gotten|seen)\s+(?:\w+\s+){0,2}?(?:invoice|bill|statement|original|email|copy)|\b(?:invoice|bill|email|statement|original)\s+(?:\S+\s+){0,2}?(?:never|didn't|did\s+not|hasn't|has\s+not)\s+(?:\w+\s+)?(?:reach|arriv|come|came|show|get|got|make)"),
    rule(QUESTION, 0, r"\bpou(?:vez|rriez|rrais|vons|rrions)(?:-|\s+)(?:vous|nous|tu)\b|\best-ce\s+que\s+vous\s+pou|\bmerci\s+de\s+(?:bien\s+vouloir\s+)?(?:m'|me\s+|nous\s+)(?:envoyer|transmettre|indiquer|faire\s+parvenir|communiquer|renvoyer|preciser|confirmer|adresser)|\b(?:copie|duplicata)\s+de\s+(?:la|cette|votre)\s+facture|\bbon\s+de\s+commande|\b(?:rib|iban|coordonnees\s+bancaires)\b|\ba\s+quoi\s+correspond|\bde\s+quoi\s+s'agit|\bqui\s+(?:etes|est)(?:-|\s+)(?:vous|ce)|\b(?:quel|quelle|quels|quelles)\s+(?:est|sont|facture|projet|chantier|montant|commande|prestation|societe)|\bje\s+n'ai\s+(?:pas|jamais)\s+recu\s+(?:la|votre|cette)\s+facture|\bpourquoi\b"),
    rule(QUESTION, 0, r"\bk(?:o|oe)nn(?:t)?en\s+sie\b|\bkopie\s+der\s+rechnung|\brechnungskopie|\bbestellnummer|\bauftragsnummer|\bbankverbindung|\bkontodaten|\bwofur|\bworum\s+geht|\bwer\s+sind\s+sie|\bwer\s+ist\s+da|\bwelche\w*\s+(?:rechnung|projekt|auftrag|leistung|bestellung|firma)|\bbitte\s+(?:\S+\s+){0,4}?(?:zusenden|zuschicken|ubermitteln|ubersenden|mitteilen|erklaren|erlautern)|\bwarum\b|\bwieso\b|\bweshalb\b"),
    rule(QUESTION, 0, r"\b(?:me|nos)\s+(?:pueden|puede|podria|podrian|podrias|puedes)\s+(?:\w+\s+)?(?:enviar|mandar|reenviar|remitir|indicar|confirmar|explicar|decir|facilitar|pasar|aclarar)|\bpod(?:ria|rian|rias|eis|emos|ias|es|en)\s+(?:\w+\s+)?(?:enviar|mandar|reenviar|remitir|indicar|confirmar|explicar|decir|facilitar|pasar|aclarar)|\bcopia\s+de\s+la\s+factura|\b(?:numero\s+de\s+pedido|orden\s+de\s+compra)|\bdatos\s+bancarios|\ba\s+que\s+corresponde|\bde\s+que\s+(?:es|se\s+trata)|\bquien\s+(?:es|habla|llama|son)|\bpor\s+que\b|\bcual\s+(?:es|factura)"),
    rule(QUESTION, 0, r"\bpot(?:ete|reste|rebbe|resti)\s+(?:\w+\s+)?(?:indicar|inviar|mandar|spedir|confermar|spiegar|dir|fornir|girar|rinviar|chiarir)|\bcopia\s+della\s+fattura|\bnumero\s+d'?\s*ordine|\bordine\s+d'acquisto|\bcoordinate\s+bancarie|\ba\s+cosa\s+si\s+riferisce|\bchi\s+(?:siete|e|parla)\b|\bdi\s+cosa\s+si\s+tratta|\bperche\b|\bquale\s+(?:fattura|progetto|ordine)"),
    rule(QUESTION, 0, r"\bpod(?:em|eria|eriam|e)\s+(?:me\s+|nos\s+)?(?:enviar|mandar|reenviar|informar|confirmar|explicar|passar)|\bcopia\s+da\s+fatura|\bsegunda\s+via|\bboleto\b|\bnumero\s+do\s+pedido|\bdados\s+bancarios|\bquem\s+(?:fala|e|esta\s+falando)\b|\bdo\s+que\s+se\s+trata|\ba\s+que\s+se\s+refere|\bpor\s+que\b"),
    rule(QUESTION, 0, r"\bkun(?:t|nen)\s+(?:u|jij|je|jullie)\b|\bkopie\s+van\s+de\s+factuur|\b(?:order|inkoop|po)nummer|\bbankgegevens|\bwaarvoor|\bwaar\s+gaat\s+(?:dit|het)\s+over|\bwie\s+(?:bent\s+u|is\s+dit|belt)|\bwaarom\b"),

    // ───────────────────────────── acknowledged ─────────────────────────────
    rule(ACK, 0, r"\b(?:thanks|thank\s+you|ty|cheers|appreciated?|much\s+appreciated|many\s+thanks)\b|\b(?:noted|got\s+it|gotcha|received|understood|acknowledged|copy\s+that|roger|will\s+do|sounds\s+good|no\s+problem|all\s+good|fair\s+enough|makes\s+sense)\b|^\W*(?:ok|okay|k|kk|okey|alright|all\s+right|sure|yes|yep|yeah|fine|great|perfect|cool|right|mm-?hmm|uh-?huh)\W*$"),
    rule(ACK, 0, r"\b(?:will|'ll|going\s+to|let\s+me|need\s+to|have\s+to)\s+(?:\w+\s+)?(?:look\s+into|check|review|look\s+at|take\s+a\s+look|investigate|follow\s+up|get\s+back|circle\s+back|chase|pass|forward|loop|raise|escalate|flag|discuss|talk\s+to|speak\s+(?:to|with)|confirm\s+with|run\s+it\s+by|bring\s+it\s+up|ask|find\s+out|dig|see\s+what|send\s+(?:it|this)\s+to)\b|\b(?:forwarded|passed|sent|handed)\s+(?:it\s+|this\s+|that\s+)?(?:on\s+|along\s+|over\s+)?to\s+(?:our|the|my)\b|\blooping\s+in|\b(?:cc'?d|copied)\s+(?:in\s+)?(?:our|my|the|here)|\bchecking\s+(?:with|on|into)|\blooking\s+into|\bon\s+it\b|\bwill\s+revert"),
    rule(ACK, 0, r"\bmerci\b|\bbien\s+recu|\bbien\s+note|\bc'est\s+note|\bje\s+(?:transmets|regarde|verifie|reviens|vais\s+(?:voir|verifier|regarder|transmettre))|\bj'ai\s+transmis|\bdanke\b|\bvielen\s+dank|\berhalten\b|\bzur\s+kenntnis|\bich\s+(?:leite|gebe)\s+(?:\S+\s+){0,3}?weiter|\bweitergeleitet|\b(?:ich|wir)\s+(?:prufe|pruefe|prufen|klare|schaue|schauen|melde|melden)\b|\bwerde\s+(?:\S+\s+){0,3}?(?:prufen|klaren|nachsehen|melden|weiterleiten)|\bin\s+ordnung\b|\bverstanden\b"),
    rule(ACK, 0, r"\bgracias\b|\brecibido\b|\blo\s+(?:reviso|revisamos|reenvio|paso|consulto|miro|verifico)|\ble\s+digo\s+algo|\btomo\s+nota|\bde\s+acuerdo\b|\bvale\b|\bentendido\b|\bgrazie\b|\bricevut[oa]\b|\bpreso\s+nota|\bverifico|\binoltro|\bgiro\s+(?:all|al)|\bvi\s+faccio\s+sapere|\bva\s+bene\b|\bcapito\b|\bobrigad[oa]\b|\brecebid[oa]\b|\bvou\s+(?:verificar|repassar|encaminhar|ver|checar)|\bencaminhei|\brepassei|\banotado|\bcerto\b|\bbedankt\b|\bdank\s+(?:je|u|jullie)|\bontvangen\b|\bgenoteerd|\bik\s+(?:kijk|zoek|ga)\s+(?:\S+\s+){0,2}?(?:ernaar|het\s+uit|na|kijken)|\bdoorgestuurd|\bik\s+stuur\s+(?:\S+\s+){0,3}?door|\bprima\b|\bbegrepen\b"),

    // ───────────────────────────── auto_reply ─────────────────────────────
    rule(AUTO, 0, r"\bout\s+of\s+(?:the\s+)?office\b|\booo\b|\bautomatic\s+reply|\bauto[\s-]?reply|\bautoreply|\bauto[\s-]?respon\w*|\bautomated\s+(?:response|reply|message|notification|email|acknowledg\w*)|\bauto[\s-]?generated|\bautomatically\s+generated|\bthis\s+is\s+an?\s+(?:automatic|automated|auto-generated)|\bdo\s+not\s+reply\s+to\s+this|\bplease\s+do\s+not\s+(?:reply|respond)|\bno-?reply\b"),
    rule(AUTO, 0, r"\bticket\s+(?:number|#|no\.?|id|\(|has\s+been|was\s+created|\#?\d)|\(#\d+\)|\[#\S+\]|\b(?:your|this)\s+(?:request|ticket|message|email|e-mail|inquiry|enquiry|case)\s+(?:\(\S+\)\s+|\#?\S*\d\S*\s+)?(?:has\s+been|was|is\s+being)\s+(?:received|logged|created|opened|assigned|forwarded|reviewed|registered)|\b(?:request|case)\s+received\b|\bwe(?:'ve|\s+have)\s+received\s+your\s+(?:email|e-mail|message|request|inquiry|enquiry)|\bthank\s+you\s+for\s+(?:your\s+(?:email|message|e-mail|inquiry|enquiry)|contacting|reaching\s+out)\b[^\n]*?\b(?:will|shall)\s+(?:respond|reply|get\s+back|be\s+in\s+touch|answer|contact|follow\s+up)"),
    rule(AUTO, 0, r"\b(?:limited|no|intermittent)\s+access\s+to\s+(?:my\s+)?(?:e-?mails?|messages|phone)|\b(?:currently|presently)\s+(?:out|away|travell?ing|on\s+(?:leave|vacation|holiday|annual\s+leave|sick\s+leave))|\bi(?:\s+am|'m|\s+will\s+be)\s+(?:currently\s+)?(?:out|away|on\s+(?:leave|vacation|holiday|annual\s+leave|parental\s+leave|maternity\s+leave|paternity\s+leave|sick\s+leave|a\s+business\s+trip)|at\s+a\s+(?:conference|trade\s+show|training|seminar|workshop)|travell?ing|off)\s+(?:\S+\s+){0,6}?(?:until|till|through|returning|and\s+will|with|from|back|on)\b|\bon\s+(?:annual|parental|maternity|paternity|sick|medical|extended)\s+leave\b|\b(?:will|shall)\s+(?:respond|reply|get\s+back\s+to\s+you|answer|return\s+your)\s+(?:\S+\s+){0,4}?(?:when|upon|on\s+my|after)\s+(?:i|my)\s+(?:return|get\s+back|am\s+back|'m\s+back)|\bupon\s+my\s+return|\bmailbox\s+is\s+(?:monitored|not\s+monitored|unattended|full)|\bmessages\s+received\s+outside|\b(?:offices?|we)\s+(?:are|is|'re|will\s+be)\s+(?:currently\s+|now\s+)?closed\b|\bthank\s+you\s+for\s+calling\b|\bbusiness\s+hours\b|\bwithin\s+\d+(?:-\d+)?\s+business\s+days|\bplease\s+allow\s+\d|\bfor\s+urgent\s+(?:matters|requests|inquiries|issues)|\bif\s+(?:this\s+is|your\s+(?:matter|request)\s+is)\s+urgent|\bwill\s+(?:respond|reply)\s+(?:as\s+soon\s+as\s+possible|in\s+the\s+evenings?|shortly)|\b(?:member\s+of\s+our|our)\s+(?:\w+\s+){0,3}?(?:team|staff)\s+will\s+(?:follow\s+up|get\s+back|respond|be\s+in\s+touch)|\badd\s+(?:additional\s+)?comments\s+(?:to\s+this\s+request\s+)?by\s+replying"),
    rule(AUTO, 0, r"\byou(?:'ve|\s+have)\s+reached\b|\bleave\s+(?:a|your|us\s+a)\s+(?:\w+\s+){0,2}?message|\bvoice\s?-?mail\s+(?:of|box|for)\b|\breached\s+(?:the\s+)?voice\s?-?mail|\b(?:after|at)\s+the\s+(?:tone|beep)|\bmailbox\s+(?:is\s+)?full|\bcannot\s+(?:accept|take)\s+(?:any\s+)?(?:more\s+)?(?:messages|your\s+call)|\bunable\s+to\s+take\s+your\s+call|\bnot\s+available\s+(?:right\s+now|to\s+take|at\s+the\s+moment)|\bis\s+not\s+available\b|\brecord\s+your\s+(?:message|name)|\bpress\s+(?:one|two|\d)|\bplease\s+hold\b|\byour\s+call\s+is\s+important|\boffice\s+hours\s+are|\bwe(?:'re|\s+are)\s+(?:currently\s+)?closed\b|\bthe\s+(?:person|party|number|subscriber)\s+you\s+(?:are\s+)?(?:trying\s+to\s+reach|have\s+dialed|called)|\bcall\s+you\s+back\s+as\s+soon\s+as"),
    rule(AUTO, 0, r"\bdue\s+to\s+(?:high|heavy|increased|a\s+high)\s+(?:volumes?|demand|number)|\bresponses?\s+may\s+take\b|\bup\s+to\s+\d+\s+(?:business|working)\s+days"),
    rule(AUTO, 0, r"\b(?:inbox|mailbox|address|account|e-?mail\s+address)\s+is\s+(?:no\s+longer|not)\s+(?:monitored|in\s+use|active|checked|attended)|\bmissed\s+your\s+call\b|\bleave\s+your\s+name\s+and\s+(?:number|phone|telephone)"),
    rule(AUTO, 0, r"\babsent(?:e|s|es)?\s+(?:du\s+bureau|jusqu|\w+\s+jusqu)|\bje\s+suis\s+absent|\breponse\s+automatique|\bmessage\s+automatique|\bnous\s+avons\s+(?:bien\s+)?recu\s+votre\s+(?:message|demande|e-?mail|courriel)|\ba\s+mon\s+retour|\bacces\s+(?:limite\s+)?(?:a\s+)?(?:mes|ma)\s+(?:e-?mails|messagerie)|\bne\s+pas\s+repondre|\ben\s+conges?\b|\bde\s+retour\s+le|\blaissez\s+(?:un|votre)\s+message|\bmessagerie\s+vocale|\bapres\s+le\s+(?:bip|signal)"),
    rule(AUTO, 0, r"\babwesenheit\w*|\bnicht\s+im\s+(?:buro|buero|haus|hause)|\bbin\s+(?:\S+\s+){0,5}?(?:abwesend|nicht\s+erreichbar|im\s+urlaub|auf\s+dienstreise)|\bim\s+urlaub\b|\bautomatische\s+antwort|\bautomatisch\s+(?:generiert|erstellt)|\bkeinen\s+zugriff\s+auf\s+(?:meine\s+)?e-?mails|\bnachricht\s+wird\s+nicht\s+weitergeleitet|\bin\s+dringenden\s+fallen|\bwieder\s+(?:erreichbar|im\s+buro|im\s+buero)|\bhinterlassen\s+sie\s+(?:\S+\s+)?nachricht|\bnach\s+dem\s+(?:signalton|ton)"),
    rule(AUTO, 0, r"\bfuera\s+de\s+la\s+oficina|\brespuesta\s+automatica|\bmensaje\s+automatico|\bestare\s+(?:\S+\s+){0,3}?(?:ausente|fuera|de\s+vacaciones)|\bestoy\s+(?:\S+\s+){0,2}?(?:ausente|fuera\s+de|de\s+vacaciones)|\bde\s+vacaciones\b|\ba\s+mi\s+regreso|\bhemos\s+recibido\s+su\s+(?:mensaje|correo|solicitud)|\bno\s+responda\s+a\s+este|\bdeje\s+su\s+mensaje|\bbuzon\s+de\s+voz|\bdespues\s+(?:de|del)\s+(?:la\s+)?(?:senal|tono)"),
    rule(AUTO, 0, r"\bfuori\s+(?:ufficio|sede)|\brisposta\s+automatica|\bmessaggio\s+automatico|\bsaro\s+(?:\S+\s+){0,3}?(?:assente|fuori|in\s+ferie)|\bsono\s+(?:\S+\s+){0,2}?(?:assente|in\s+ferie|fuori\s+ufficio)|\bin\s+ferie\b|\bal\s+mio\s+rientro|\babbiamo\s+ricevuto\s+la\s+(?:sua|vostra)\s+(?:richiesta|email|e-mail|mail)|\bnon\s+rispondere\s+a\s+questa|\blasci(?:ate)?\s+un\s+messaggio|\bsegreteria\s+telefonica|\bdopo\s+il\s+(?:segnale|bip)"),
    rule(AUTO, 0, r"\bfora\s+do\s+escritorio|\bresposta\s+automatica|\bmensagem\s+automatica|\bestarei\s+(?:\S+\s+){0,3}?(?:ausente|fora|de\s+ferias)|\bestou\s+(?:\S+\s+){0,2}?(?:ausente|de\s+ferias|fora\s+do)|\bde\s+ferias\b|\bao\s+(?:meu\s+)?retorno|\brecebemos\s+(?:a\s+)?sua\s+(?:mensagem|solicitacao|e-?mail)|\bnao\s+responda\s+(?:a\s+)?este|\bdeixe\s+(?:sua|a\s+sua|uma)\s+mensagem|\bcaixa\s+postal|\bapos\s+o\s+(?:sinal|bipe)"),
    rule(AUTO, 0, r"\bafwezig\w*|\bniet\s+op\s+kantoor|\bautomatisch\s+(?:antwoord|bericht|gegenereerd)|\bop\s+vakantie\b|\bmet\s+vakantie\b|\bben\s+(?:\S+\s+){0,4}?(?:afwezig|niet\s+bereikbaar|met\s+verlof)|\bweer\s+(?:aanwezig|bereikbaar|op\s+kantoor)|\bwij\s+hebben\s+uw\s+(?:e-?mail|bericht|verzoek)\s+ontvangen|\bspreek\s+(?:een\s+)?bericht\s+in|\bna\s+de\s+(?:piep|toon)"),
];

struct Compiled {
    flags: u8,
    re: Regex,
    before_veto: Option<Regex>,
    after_veto: Option<Regex>,
    after_req: Option<Regex>,
    match_veto: Option<Regex>,
}

struct Engine {
    /// Rules grouped by intent (index = `Intent::index`), each with its global id.
    by_intent: Vec<Vec<(usize, Compiled)>>,
    /// All English (and language-neutral) rules at once: one pass tells which of them match.
    set: Option<RegexSet>,
    /// The same for the rules of the other languages, skipped on clearly English text.
    foreign_set: Option<RegexSet>,
    /// Per rule: (foreign, index in its set).
    place: Vec<(bool, usize)>,
}

fn expand(pattern: &str) -> String {
    let mut p = pattern.to_string();
    for (name, value) in FRAGMENTS {
        p = p.replace(name, value);
    }
    p
}

/// The pattern with every counted repetition made open-ended (`{0,4}` -> `*`, `{1,3}` -> `+`): it
/// matches wherever the original does, and without counters the one-pass automaton over all rules
/// does not track positions, which keeps it small and fast. Each candidate is then checked with its
/// exact pattern.
fn unbounded(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let (head, tail) = rest.split_at(open);
        out.push_str(head);
        let counter = tail[1..].find('}').map(|close| &tail[1..=close]);
        let replacement = counter.and_then(|c| {
            let (min, max) = c.split_once(',')?;
            let max_ok = max.is_empty() || max.parse::<u32>().is_ok();
            match min.parse::<u32>() {
                Ok(0) if max_ok => Some("*"),
                Ok(_) if max_ok => Some("+"),
                _ => None,
            }
        });
        // An escaped brace is a literal, not a counter.
        let escaped = head.ends_with('\\');
        match (replacement, counter) {
            (Some(r), Some(c)) if !escaped => {
                out.push_str(r);
                rest = &tail[c.len() + 2..];
            }
            _ => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn build(pattern: &str) -> Option<Regex> {
    if pattern.is_empty() {
        return None;
    }
    RegexBuilder::new(&expand(pattern)).unicode(false).size_limit(1 << 24).build().ok()
}

static ENGINE: LazyLock<Engine> = LazyLock::new(|| engine_of(|_| true));

/// The opt-out rules alone: a set small enough for its automaton to stay in cache on varied text
/// (the whole set does not: on thousands of distinct replies it rebuilds states all the time).
static OPT_OUT_ENGINE: LazyLock<Engine> = LazyLock::new(|| engine_of(|s| s.intent == Intent::OptOut));

/// The promise rules alone, to anchor a promised date once the model has read a promise.
static PROMISE_ENGINE: LazyLock<Engine> = LazyLock::new(|| engine_of(|s| s.intent == Intent::PromiseToPay));

fn engine_of(keep: impl Fn(&Spec) -> bool) -> Engine {
    let mut by_intent: Vec<Vec<(usize, Compiled)>> = (0..Intent::ALL.len()).map(|_| Vec::new()).collect();
    let (mut patterns, mut foreign_patterns, mut place) = (Vec::new(), Vec::new(), Vec::new());
    for spec in SPECS.iter().filter(|s| keep(s)) {
        // A pattern that fails to compile is a bug caught by the tests; at run time it is skipped.
        let Some(re) = build(spec.pattern) else { continue };
        let id = place.len();
        let list = if spec.foreign { &mut foreign_patterns } else { &mut patterns };
        place.push((spec.foreign, list.len()));
        list.push(unbounded(&expand(spec.pattern)));
        by_intent[spec.intent.index()].push((
            id,
            Compiled {
                flags: spec.flags,
                re,
                before_veto: build(spec.before_veto),
                after_veto: build(spec.after_veto),
                after_req: build(spec.after_req),
                match_veto: build(spec.match_veto),
            },
        ));
    }
    // The lazy DFA's cache per thread: room for the states of varied text, bounded for long-running services.
    let set_of =
        |p: &[String]| RegexSetBuilder::new(p).unicode(false).size_limit(1 << 27).dfa_size_limit(1 << 25).build().ok();
    Engine { by_intent, set: set_of(&patterns), foreign_set: set_of(&foreign_patterns), place }
}

/// The phrase of the client's own text that the opt-out rules read as a request to stop, if any.
pub(crate) fn opt_out_evidence(text: &str) -> Option<String> {
    let norm = Normalized::new(text);
    let t = &norm.text[..];
    let engine = &*OPT_OUT_ENGINE;
    let candidates = engine.candidates(t);
    find_intent(engine, &candidates, Intent::OptOut, t, false).map(|hit| evidence(&norm, hit))
}

impl Engine {
    /// Which rules match somewhere in `text` (foreign-language rules only when it is not clearly English).
    fn candidates(&self, text: &[u8]) -> Vec<bool> {
        let all = |set: &Option<RegexSet>, run: bool| match set {
            Some(set) if run => Some(set.matches(text)),
            _ => None,
        };
        let english = all(&self.set, true);
        let foreign = all(&self.foreign_set, !lang::clearly_english(text));
        self.place
            .iter()
            .map(|&(is_foreign, i)| {
                let matched = if is_foreign { foreign.as_ref() } else { english.as_ref() };
                matched.is_some_and(|m| m.matched(i))
            })
            .collect()
    }
}

/// Every pattern compiles (checked by the tests).
#[cfg(test)]
pub(crate) fn broken_patterns() -> Vec<String> {
    let mut broken = Vec::new();
    for spec in SPECS {
        for p in [spec.pattern, spec.before_veto, spec.after_veto, spec.after_req, spec.match_veto] {
            if !p.is_empty() && build(p).is_none() {
                broken.push(p.to_string());
            }
        }
    }
    broken
}

const NEGATORS: &[&str] = &[
    "not", "no", "never", "cannot", "nor", "neither", "without", "nobody", "none", "ne", "pas", "jamais", "nicht",
    "kein", "keine", "keinen", "keiner", "nie", "niemals", "nunca", "non", "nao", "niet", "geen", "nooit", "nem",
];
const AFTER_NEGATORS: &[&str] = &["nicht", "niet", "pas", "nooit", "jamais", "niemals", "nie"];
const FUTURE: &[&str] = &[
    "will", "shall", "would", "should", "could", "can", "must", "be", "going", "wird", "werden", "werde", "sera",
    "seront", "sara", "saranno", "vai", "vamos", "vou", "allons", "vais", "vont", "zal", "zullen", "gaat", "gaan",
    "once", "when", "if", "until", "unless",
];

fn words(bytes: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    bytes.split(|b| !(b.is_ascii_alphanumeric() || *b == b'\'')).filter(|w| !w.is_empty())
}

fn is_negator(w: &[u8]) -> bool {
    w.ends_with(b"n't") || NEGATORS.iter().any(|n| n.as_bytes() == w)
}

/// A sentence boundary at `i`: "!", "?", ";", a newline, or a full stop followed by a space or
/// the end (not the dot of "1,980.00" or "bill.com").
fn is_boundary(text: &[u8], i: usize) -> bool {
    match text[i] {
        b'!' | b'?' | b';' | b'\n' => true,
        b'.' => text.get(i + 1).is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b')')),
        _ => false,
    }
}

/// Start of the sentence-level clause that contains `at`.
fn clause_start(text: &[u8], at: usize) -> usize {
    (0..at).rev().find(|&i| is_boundary(text, i)).map_or(0, |p| p + 1)
}

/// Start of the phrase that contains `at`: also cut at commas, colons, brackets and dashes.
fn phrase_start(text: &[u8], at: usize) -> usize {
    let from = clause_start(text, at).max(at.saturating_sub(60));
    let mut s = from;
    for i in from..at {
        let b = text[i];
        let dash = b == b'-' && (i == 0 || text[i - 1] == b' ') && text.get(i + 1).is_none_or(|c| *c == b' ');
        if matches!(b, b',' | b':' | b'(' | b')') || dash {
            s = i + 1;
        }
    }
    s
}

/// End of the phrase that starts at `at` (same cuts as [`phrase_start`]).
fn phrase_end(text: &[u8], at: usize) -> usize {
    let limit = (at + 60).min(text.len());
    (at..limit)
        .find(|&i| {
            let b = text[i];
            let dash = b == b'-' && (i == 0 || text[i - 1] == b' ') && text.get(i + 1).is_none_or(|c| *c == b' ');
            is_boundary(text, i) || matches!(b, b',' | b':' | b'(' | b')') || dash
        })
        .unwrap_or(limit)
}

/// End of the sentence that contains `at`, and whether it ends with a question mark.
fn sentence_end(text: &[u8], at: usize) -> (usize, bool) {
    match (at..text.len()).find(|&i| text[i] != b';' && is_boundary(text, i)) {
        Some(p) => (p, text[p] == b'?'),
        None => (text.len(), false),
    }
}

/// The last few words before `start` in its phrase, stopping at "but" / "however".
fn lookback(text: &[u8], start: usize, n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for w in words(&text[phrase_start(text, start)..start]).rev() {
        if out.len() == n
            || matches!(
                w,
                b"but"
                    | b"however"
                    | b"mais"
                    | b"aber"
                    | b"pero"
                    | b"ma"
                    | b"mas"
                    | b"maar"
                    | b"so"
                    | b"and"
                    | b"because"
                    | b"interested"
                    | b"okay"
                    | b"ok"
                    | b"yeah"
                    | b"please"
                    | b"look"
                    | b"listen"
                    | b"thanks"
                    | b"then"
                    | b"now"
            )
        {
            break;
        }
        out.push(w);
    }
    out
}

fn negated_before(text: &[u8], start: usize) -> bool {
    // "we are not disputing", "I don't want to unsubscribe", "no need to remove me"; not the
    // interjection in "no, stop calling".
    let before = &text[phrase_start(text, start)..start];
    if NEGATING_PHRASE.as_ref().is_some_and(|re| re.is_match(before)) {
        return true;
    }
    let back = lookback(text, start, 3);
    back.iter().enumerate().any(|(i, w)| {
        let next = if i == 0 { words(&text[start..]).next() } else { Some(back[i - 1]) };
        is_negator(w) && !(*w == b"no" && next.is_some_and(|n| INTERJECTION_FOLLOWERS.contains(&n)))
    })
}

/// After an English "no", these words show it is an interjection ("no stop calling", "no we paid").
const INTERJECTION_FOLLOWERS: &[&[u8]] = &[
    b"stop",
    b"i",
    b"i'm",
    b"we",
    b"we're",
    b"it",
    b"it's",
    b"that",
    b"that's",
    b"this",
    b"thanks",
    b"thank",
    b"sorry",
    b"problem",
    b"problems",
    b"worries",
    b"worry",
    b"doubt",
    b"rush",
    b"you",
    b"please",
    b"just",
    b"look",
    b"seriously",
];

/// Negations that reach further than a few words back.
static NEGATING_PHRASE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    build(
        r"(?:\bno\s+need\s+(?:for\s+you\s+)?to|\b(?:don't|do\s+not|doesn't|does\s+not|didn't|did\s+not)\s+(?:want|need|wish|mean|ask)\s+(?:you\s+|anyone\s+)?to|\bnot\s+(?:asking|looking|requesting|trying)\s+(?:you\s+)?(?:for|to)\s+(?:a\s+|an\s+|any\s+)?|\bno\s+reason\s+to|\bnot\s+going\s+to)\s*$",
    )
});

fn negated_after(text: &[u8], end: usize) -> bool {
    words(&text[end..phrase_end(text, end)]).take(3).any(|w| AFTER_NEGATORS.iter().any(|n| n.as_bytes() == w))
}

fn negated_inside(m: &[u8]) -> bool {
    words(m).any(is_negator)
}

fn future_context(text: &[u8], start: usize, end: usize) -> bool {
    let is_future = |w: &[u8]| w.ends_with(b"'ll") || FUTURE.iter().any(|f| f.as_bytes() == w);
    lookback(text, start, 3).iter().any(|w| is_future(w)) || words(&text[start..end]).any(is_future)
}

/// A rule's match that survived its context checks.
#[derive(Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
}

fn accept(rule: &Compiled, text: &[u8], start: usize, end: usize) -> bool {
    let m = &text[start..end];
    if rule.flags & N != 0 && (negated_before(text, start) || negated_after(text, end)) {
        return false;
    }
    if rule.flags & I != 0 && negated_inside(m) {
        return false;
    }
    if rule.flags & F != 0 && future_context(text, start, end) {
        return false;
    }
    if rule.flags & Q != 0 && sentence_end(text, end.saturating_sub(1).max(start)).1 {
        return false;
    }
    let before = &text[clause_start(text, start)..start];
    let after = &text[end..(end + 120).min(text.len())];
    if rule.before_veto.as_ref().is_some_and(|v| v.is_match(before)) {
        return false;
    }
    if rule.after_veto.as_ref().is_some_and(|v| v.is_match(after)) {
        return false;
    }
    if rule.after_req.as_ref().is_some_and(|v| !v.is_match(after)) {
        return false;
    }
    if rule.match_veto.as_ref().is_some_and(|v| v.is_match(m)) {
        return false;
    }
    true
}

/// The first (leftmost) accepted match of any candidate rule of `intent`.
fn find_intent(engine: &Engine, candidates: &[bool], intent: Intent, text: &[u8], skip_weak: bool) -> Option<Hit> {
    let mut best: Option<Hit> = None;
    for (id, rule) in &engine.by_intent[intent.index()] {
        if !candidates[*id] || (rule.flags & W != 0 && skip_weak) {
            continue;
        }
        for m in rule.re.find_iter(text) {
            if best.is_some_and(|b| b.start <= m.start()) {
                break;
            }
            if accept(rule, text, m.start(), m.end()) {
                best = Some(Hit { start: m.start(), end: m.end() });
                break;
            }
        }
    }
    best
}

/// Words that split one payment into parts ("half", "the rest", "the balance", ...).
static SPLIT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    build(
        r"\b(?:half|halves|the\s+rest|rest\s+of|remainder|remaining|the\s+balance|the\s+other|second\s+(?:payment|instalment|installment|part|half)|first\s+(?:payment|instalment|installment|part|half)|partial|moitie|reste|solde|restant|halfte|rest|mitad|resto|restante|saldo|meta|rimanente|metade|helft|restbedrag)\b",
    )
});

/// A sum of money ("$500", "1.200 €", "five hundred").
static AMOUNT: LazyLock<Option<Regex>> = LazyLock::new(|| build("{MONEY}"));

/// Words that make a sentence about payment ("pay", "transfer", "check run", ...).
static PAYMENT_WORD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    build(
        r"\b(?:pay|pays|payment|payments|paying|remit\w*|transfer\w*|wire|(?:a|the|your|our)\s+(?:check|cheque)|checks|cheques|check\s+run|ach|eft|funds|settle\w*|pai(?:e|ent|erons|erai|ement|ements)|payer|payons|regl\w*|virement|vire\w*|vers(?:er|erons|ement)|zahl\w*|uberweis\w*|ueberweis\w*|bezahl\w*|begleich\w*|paga\w*|pago|pague\w*|pagh\w*|abon\w*|bonific\w*|sald\w*|betal\w*|overma\w*|run|batch)\b",
    )
});

/// Past-tense words that make a dated sentence a report, not a promise.
static PAST_WORD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    build(
        r"\b(?:paid|sent|was|were|went|did|made|received|mailed|wired|cleared|ago|last|yesterday|already|payed|been|had)\b",
    )
});

fn sentence_bounds(text: &[u8], at: usize) -> (usize, usize) {
    let start = clause_start(text, at);
    let (end, _) = sentence_end(text, at);
    (start, end)
}

/// The promised date for a promise whose evidence is `hit`: a date in the same sentence (the first
/// after the evidence, else the last before), else the nearest date in another sentence about paying.
fn promise_date(mentions: &[dates::Mention], text: &[u8], hit: Hit) -> Option<Date> {
    let (s, e) = sentence_bounds(text, hit.start);
    let same: Vec<&dates::Mention> = mentions.iter().filter(|m| m.start >= s && m.start <= e.max(hit.end)).collect();
    if let Some(m) = same.iter().find(|m| m.start >= hit.start) {
        return Some(m.date);
    }
    if let Some(m) = same.last() {
        return Some(m.date);
    }
    mentions
        .iter()
        .filter(|m| about_paying(text, m))
        .min_by_key(|m| if m.start >= hit.end { m.start - hit.end } else { hit.start.saturating_sub(m.end) })
        .map(|m| m.date)
}

/// The date's sentence talks about paying, not in the past tense, and is not a question.
fn about_paying(text: &[u8], m: &dates::Mention) -> bool {
    let (Some(payment), Some(past)) = (PAYMENT_WORD.as_ref(), PAST_WORD.as_ref()) else { return false };
    let (s, e) = sentence_bounds(text, m.start);
    let sentence = &text[s..e.max(m.end)];
    payment.is_match(sentence)
        && !past.is_match(sentence)
        && !sentence_end(text, m.start).1
        && !NOT_A_COMMITMENT.as_ref().is_some_and(|re| re.is_match(sentence))
}

/// Words that make a dated sentence about paying a follow-up, not a commitment ("I'll ask our
/// payments team on Monday").
static NOT_A_COMMITMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    build(
        r"\b(?:check|checking|ask|asking|review|reviewing|look|looking|discuss|discussing|talk|speak|chase|chasing|confirm|forward|forwarded|pass|let\s+you\s+know|get\s+back|find\s+out|meeting|call\s+you|if|whether|can't|cannot|unable|won't)\b",
    )
});

fn distinct_dates(mentions: &[dates::Mention]) -> usize {
    let mut ds: Vec<Date> = mentions.iter().map(|m| m.date).collect();
    ds.sort();
    ds.dedup();
    ds.len()
}

/// A date in a sentence that talks about paying, not in the past: an implicit promise
/// ("Scheduled payment date in our ERP: 2026-10-15", "our next check run is June 5th").
fn implicit_promise(mentions: &[dates::Mention], text: &[u8]) -> Option<(Hit, Date)> {
    mentions.iter().find(|m| about_paying(text, m)).map(|m| (Hit { start: m.start, end: m.end }, m.date))
}

/// A reply that is only a date ("Friday.", "Hi, Monday at the latest"): when it pays.
fn bare_date(mentions: &[dates::Mention], text: &[u8]) -> Option<(Hit, Date)> {
    let [m] = mentions else { return None };
    let rest: Vec<&[u8]> = words(&text[..m.start])
        .chain(words(&text[m.end..]))
        .filter(|w| {
            !matches!(
                *w,
                b"hi"
                    | b"hello"
                    | b"hey"
                    | b"at"
                    | b"the"
                    | b"latest"
                    | b"by"
                    | b"on"
                    | b"thanks"
                    | b"ok"
                    | b"okay"
                    | b"yes"
                    | b"yeah"
                    | b"sure"
            )
        })
        .collect();
    (rest.len() <= 2 && !text.contains(&b'?')).then_some((Hit { start: m.start, end: m.end }, m.date))
}

fn evidence(norm: &Normalized<'_>, hit: Hit) -> String {
    norm.original(hit.start, hit.end)
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '\u{2013}' | '\u{2014}'))
        .to_string()
}

fn decided(intent: Intent, norm: &Normalized<'_>, hit: Hit, date: Option<Date>) -> Classification {
    Classification::certain(intent, date, evidence(norm, hit))
}

/// The promised date of a reply the model read as a promise: the date of the promise phrase the
/// promise rules find, else a date in a sentence about paying, else the only date in a short reply,
/// else the first date that is not in the past tense.
pub(crate) fn promised_date(text: &str, reference: Date) -> Option<Date> {
    let norm = Normalized::new(text);
    let t = &norm.text[..];
    let mentions = dates::find(t, reference, lang::detect(t));
    // The promise phrase's own date when the promise rules find one (their evidence anchors it).
    let engine = &*PROMISE_ENGINE;
    let candidates = engine.candidates(t);
    if let Some(d) =
        find_intent(engine, &candidates, Intent::PromiseToPay, t, false).and_then(|hit| promise_date(&mentions, t, hit))
    {
        return Some(d);
    }
    if let Some((_, d)) = implicit_promise(&mentions, t).or_else(|| bare_date(&mentions, t)) {
        return Some(d);
    }
    // The model read a promise: a single date still ahead is its date, even in a sentence that also
    // says something in the past ("paying it monday, sorry been away").
    let mut ahead: Vec<Date> = mentions.iter().map(|m| m.date).filter(|d| *d >= reference).collect();
    ahead.sort();
    ahead.dedup();
    if let [only] = ahead[..] {
        return Some(only);
    }
    let past = PAST_WORD.as_ref();
    mentions
        .iter()
        .find(|m| {
            let (s, e) = sentence_bounds(t, m.start);
            !past.is_some_and(|re| re.is_match(&t[s..e.max(m.end)])) && m.date >= reference
        })
        .map(|m| m.date)
}

/// Classify the client's own text (already stripped of quotes for email).
pub(crate) fn classify_text(text: &str, reference: Date) -> Classification {
    let norm = Normalized::new(text);
    let t = &norm.text[..];
    if t.iter().all(|b| !b.is_ascii_alphanumeric() && *b < 0x80 && *b != b'?') {
        return Classification::fallback();
    }
    let engine = &*ENGINE;
    let candidates = engine.candidates(t);
    let auto = find_intent(engine, &candidates, Intent::AutoReply, t, false);
    let in_auto = auto.is_some();
    for intent in Intent::ALL {
        if in_auto && matches!(intent, Intent::Question | Intent::Acknowledged) {
            continue;
        }
        match intent {
            Intent::PromiseToPay => {
                let mentions = || dates::find(t, reference, lang::detect(t));
                if let Some(hit) = find_intent(engine, &candidates, intent, t, false) {
                    let mentions = mentions();
                    let amounts = AMOUNT.as_ref().map_or(0, |re| re.find_iter(t).count());
                    let split = amounts >= 2 || SPLIT.as_ref().is_some_and(|re| re.is_match(t));
                    if split && distinct_dates(&mentions) >= 2 {
                        return decided(Intent::PaymentPlan, &norm, hit, None);
                    }
                    return decided(intent, &norm, hit, promise_date(&mentions, t, hit));
                }
                // Without a promise phrase, only a dated sentence about paying or a bare date can promise.
                let short = words(t).nth(8).is_none();
                if !in_auto && (short || PAYMENT_WORD.as_ref().is_some_and(|re| re.is_match(t))) {
                    let mentions = mentions();
                    if let Some((hit, date)) = implicit_promise(&mentions, t).or_else(|| bare_date(&mentions, t)) {
                        return decided(intent, &norm, hit, Some(date));
                    }
                }
            }
            Intent::AutoReply => {
                if let Some(hit) = auto {
                    return decided(intent, &norm, hit, None);
                }
            }
            Intent::Question => {
                if let Some(hit) = find_intent(engine, &candidates, intent, t, false) {
                    return decided(intent, &norm, hit, None);
                }
                if let Some(q) = t.iter().position(|b| *b == b'?') {
                    // Only a question mark: a question, but not a sure one.
                    let s = clause_start(t, q);
                    let hit = Hit { start: s, end: q + 1 };
                    let mut c = decided(intent, &norm, hit, None);
                    c.needs_review = true;
                    c.confidence = 0.5;
                    return c;
                }
            }
            _ => {
                if let Some(hit) = find_intent(engine, &candidates, intent, t, in_auto) {
                    return decided(intent, &norm, hit, None);
                }
            }
        }
    }
    Classification::fallback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_ended_counters() {
        assert_eq!(unbounded(r"a(?:\S+\s+){0,4}?b\d{1,3}c{2}d\{0,1\}"), r"a(?:\S+\s+)*?b\d+c{2}d\{0,1\}");
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(broken_patterns(), Vec::<String>::new());
        assert!(ENGINE.set.is_some() && ENGINE.foreign_set.is_some());
        assert!(SPLIT.is_some() && PAYMENT_WORD.is_some() && PAST_WORD.is_some() && AMOUNT.is_some());
        assert!(NEGATING_PHRASE.is_some() && NOT_A_COMMITMENT.is_some());
    }
}
