//! Finding and resolving promised dates, relative to the day the reply arrived.
//!
//! | phrase | date |
//! |---|---|
//! | today, tonight, end of day, "aujourd'hui", "heute", "hoy", "oggi", "hoje", "vandaag" | the reference date |
//! | tomorrow, "demain", "morgen", "mañana", "domani", "amanhã" | reference + 1 |
//! | the day after tomorrow | reference + 2 |
//! | a weekday, with or without this/next/on ("Friday", "next Friday", "vendredi", "am Freitag", "el jueves") | the first such weekday strictly after the reference |
//! | a day of the month ("the 15th", "on the twentieth", "le 15", "am 15.", "el día 15", "il 15", "no dia 15") | the next day with that number on or after the reference |
//! | end of (the) month, EOM, month end, "fin du mois", "Ende des Monats", "fine mese", ... | last day of the reference month |
//! | end of next month | last day of the following month |
//! | next week, "la semaine prochaine", "nächste Woche", "la semana que viene", ... | Friday of the following week (weeks start on Monday) |
//! | this week, end of the week, by the weekend | Friday of the reference week, or the reference date if that Friday is past |
//! | in/within N days (digits or words, "a couple of" = 2), N weeks (× 7), N months | reference + N; "N business days" skips weekends |
//! | an explicit date ("March 20", "20 March", "20th of March", "the eighth of January", "2026-03-20", "20. März", "20 de marzo") | that date in the reference year, or the next year if it is already past; with a year, that date |
//! | numeric "20/03", "20.03.": day/month, except in English where "3/20" is month/day (US) unless the first number is above 12 |
//! | end of the year / quarter | 31 December / the quarter's last day |
//! | "end of March", "Ende März", "fin mars" | the last day of that month (this year, or next if past) |
//! | "Tuesday next week", "next week on Tuesday" | that weekday in the following week |
//! | "Monday the 16th", "el jueves 12" | the day number wins over the weekday |
//! | "COB Friday", "end of day tomorrow" | the date that follows |
//! | "in N business days" | N weekdays after the reference (weekends skipped) |
//!
//! Phrases with no resolvable day ("soon", "next month", "early next week" is resolved as next week) give nothing.

use std::sync::LazyLock;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::lang::Lang;
use crate::normalize::Normalized;

/// A date phrase found in a text and the date it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    /// Byte range in the normalised text.
    pub start: usize,
    pub end: usize,
    pub date: Date,
}

/// Every date phrase in `text` (any language), resolved against `reference`, in text order.
pub fn extract(text: &str, reference: Date) -> Vec<(String, Date)> {
    let norm = Normalized::new(text);
    let lang = crate::lang::detect(&norm.text);
    find(&norm.text, reference, lang).into_iter().map(|m| (norm.original(m.start, m.end).to_string(), m.date)).collect()
}

/// The first date phrase in `text`, resolved against `reference`.
pub fn resolve(text: &str, reference: Date) -> Option<Date> {
    extract(text, reference).into_iter().next().map(|(_, d)| d)
}

#[derive(Clone, Copy)]
enum Kind {
    Today,
    Tomorrow,
    AfterTomorrow,
    Weekday,
    WeekdayDay,
    WeekdayNextWeek,
    EndOfNamedMonth,
    DayOfMonth,
    DayOfNextMonth,
    EndOfMonth,
    EndOfNextMonth,
    EndOfYear,
    EndOfQuarter,
    NextWeek,
    ThisWeek,
    InPeriod,
    MonthDay,
    DayMonth,
    OrdinalMonth,
    MonthOrdinal,
    Iso,
    Numeric,
    DayOfMonthWord,
}

const MONTHS: &[(&str, i8)] = &[
    ("january", 1),
    ("jan", 1),
    ("janvier", 1),
    ("janv", 1),
    ("januar", 1),
    ("januari", 1),
    ("jaenner", 1),
    ("janner", 1),
    ("enero", 1),
    ("gennaio", 1),
    ("janeiro", 1),
    ("february", 2),
    ("feb", 2),
    ("fevrier", 2),
    ("fevr", 2),
    ("fev", 2),
    ("februar", 2),
    ("februari", 2),
    ("febrero", 2),
    ("febbraio", 2),
    ("fevereiro", 2),
    ("march", 3),
    ("mar", 3),
    ("mars", 3),
    ("marz", 3),
    ("maerz", 3),
    ("maart", 3),
    ("marzo", 3),
    ("marco", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("abril", 4),
    ("aprile", 4),
    ("may", 5),
    ("mai", 5),
    ("mei", 5),
    ("mayo", 5),
    ("maggio", 5),
    ("maio", 5),
    ("june", 6),
    ("jun", 6),
    ("juin", 6),
    ("juni", 6),
    ("junio", 6),
    ("giugno", 6),
    ("junho", 6),
    ("july", 7),
    ("jul", 7),
    ("juillet", 7),
    ("juil", 7),
    ("juli", 7),
    ("julio", 7),
    ("luglio", 7),
    ("julho", 7),
    ("august", 8),
    ("aug", 8),
    ("aout", 8),
    ("augustus", 8),
    ("agosto", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("setiembre", 9),
    ("settembre", 9),
    ("setembro", 9),
    ("october", 10),
    ("oct", 10),
    ("octobre", 10),
    ("oktober", 10),
    ("okt", 10),
    ("octubre", 10),
    ("ottobre", 10),
    ("outubro", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("novembro", 11),
    ("december", 12),
    ("dec", 12),
    ("decembre", 12),
    ("dezember", 12),
    ("dez", 12),
    ("diciembre", 12),
    ("dicembre", 12),
    ("dezembro", 12),
];

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
    ("lundi", Weekday::Monday),
    ("mardi", Weekday::Tuesday),
    ("mercredi", Weekday::Wednesday),
    ("jeudi", Weekday::Thursday),
    ("vendredi", Weekday::Friday),
    ("samedi", Weekday::Saturday),
    ("dimanche", Weekday::Sunday),
    ("montag", Weekday::Monday),
    ("dienstag", Weekday::Tuesday),
    ("mittwoch", Weekday::Wednesday),
    ("donnerstag", Weekday::Thursday),
    ("freitag", Weekday::Friday),
    ("samstag", Weekday::Saturday),
    ("sonnabend", Weekday::Saturday),
    ("sonntag", Weekday::Sunday),
    ("lunes", Weekday::Monday),
    ("martes", Weekday::Tuesday),
    ("miercoles", Weekday::Wednesday),
    ("jueves", Weekday::Thursday),
    ("viernes", Weekday::Friday),
    ("sabado", Weekday::Saturday),
    ("domingo", Weekday::Sunday),
    ("lunedi", Weekday::Monday),
    ("martedi", Weekday::Tuesday),
    ("mercoledi", Weekday::Wednesday),
    ("giovedi", Weekday::Thursday),
    ("venerdi", Weekday::Friday),
    ("sabato", Weekday::Saturday),
    ("domenica", Weekday::Sunday),
    ("segunda-feira", Weekday::Monday),
    ("segunda feira", Weekday::Monday),
    ("terca-feira", Weekday::Tuesday),
    ("terca feira", Weekday::Tuesday),
    ("quarta-feira", Weekday::Wednesday),
    ("quarta feira", Weekday::Wednesday),
    ("quinta-feira", Weekday::Thursday),
    ("quinta feira", Weekday::Thursday),
    ("sexta-feira", Weekday::Friday),
    ("sexta feira", Weekday::Friday),
    ("maandag", Weekday::Monday),
    ("dinsdag", Weekday::Tuesday),
    ("woensdag", Weekday::Wednesday),
    ("donderdag", Weekday::Thursday),
    ("vrijdag", Weekday::Friday),
    ("zaterdag", Weekday::Saturday),
    ("zondag", Weekday::Sunday),
];

/// Portuguese short weekday names are also ordinary words ("segunda via"); they count only after
/// a preposition.
const PT_SHORT_WEEKDAYS: &[(&str, Weekday)] = &[
    ("segunda", Weekday::Monday),
    ("terca", Weekday::Tuesday),
    ("quarta", Weekday::Wednesday),
    ("quinta", Weekday::Thursday),
    ("sexta", Weekday::Friday),
];

/// English short weekday names ("next Wed", "by Fri"); "sun", "sat", "wed" are also words, so they
/// count only after a preposition, like the Portuguese ones.
const EN_SHORT_WEEKDAYS: &[(&str, Weekday)] = &[
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("tues", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("thur", Weekday::Thursday),
    ("thurs", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// Day numbers said or written in words after a preposition ("le dix", "am zwanzigsten", "el quince",
/// "il venti", "dia vinte", "op de twintigste"), accent-folded as the text is.
const DAY_WORDS: &[(&str, i8)] = &[
    ("premier", 1),
    ("deux", 2),
    ("trois", 3),
    ("quatre", 4),
    ("cinq", 5),
    ("six", 6),
    ("sept", 7),
    ("huit", 8),
    ("neuf", 9),
    ("dix", 10),
    ("onze", 11),
    ("douze", 12),
    ("treize", 13),
    ("quatorze", 14),
    ("quinze", 15),
    ("seize", 16),
    ("dix-sept", 17),
    ("dix-huit", 18),
    ("dix-neuf", 19),
    ("vingt", 20),
    ("trente", 30),
    ("vingt-et-un", 21),
    ("vingt et un", 21),
    ("vingt-deux", 22),
    ("vingt-trois", 23),
    ("vingt-quatre", 24),
    ("vingt-cinq", 25),
    ("vingt-six", 26),
    ("vingt-sept", 27),
    ("vingt-huit", 28),
    ("vingt-neuf", 29),
    ("trente-et-un", 31),
    ("trente et un", 31),
    ("dix sept", 17),
    ("dix huit", 18),
    ("dix neuf", 19),
    ("vingt deux", 22),
    ("vingt trois", 23),
    ("vingt quatre", 24),
    ("vingt cinq", 25),
    ("vingt six", 26),
    ("vingt sept", 27),
    ("vingt huit", 28),
    ("vingt neuf", 29),
    ("primero", 1),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("cinco", 5),
    ("seis", 6),
    ("siete", 7),
    ("ocho", 8),
    ("nueve", 9),
    ("diez", 10),
    ("once", 11),
    ("doce", 12),
    ("trece", 13),
    ("catorce", 14),
    ("quince", 15),
    ("dieciseis", 16),
    ("diecisiete", 17),
    ("dieciocho", 18),
    ("diecinueve", 19),
    ("veinte", 20),
    ("veintiuno", 21),
    ("veintidos", 22),
    ("veintitres", 23),
    ("veinticuatro", 24),
    ("veinticinco", 25),
    ("veintiseis", 26),
    ("veintisiete", 27),
    ("veintiocho", 28),
    ("veintinueve", 29),
    ("treinta", 30),
    ("treinta y uno", 31),
    ("veintiun", 21),
    ("primo", 1),
    ("due", 2),
    ("tre", 3),
    ("quattro", 4),
    ("cinque", 5),
    ("sei", 6),
    ("sette", 7),
    ("otto", 8),
    ("nove", 9),
    ("dieci", 10),
    ("undici", 11),
    ("dodici", 12),
    ("tredici", 13),
    ("quattordici", 14),
    ("quindici", 15),
    ("sedici", 16),
    ("diciassette", 17),
    ("diciotto", 18),
    ("diciannove", 19),
    ("venti", 20),
    ("ventuno", 21),
    ("ventidue", 22),
    ("ventitre", 23),
    ("ventiquattro", 24),
    ("venticinque", 25),
    ("ventisei", 26),
    ("ventisette", 27),
    ("ventotto", 28),
    ("ventinove", 29),
    ("trenta", 30),
    ("trentuno", 31),
    ("primeiro", 1),
    ("dois", 2),
    ("quatro", 4),
    ("sete", 7),
    ("oito", 8),
    ("dez", 10),
    ("doze", 12),
    ("treze", 13),
    ("catorze", 14),
    ("dezesseis", 16),
    ("dezessete", 17),
    ("dezoito", 18),
    ("dezenove", 19),
    ("vinte", 20),
    ("trinta", 30),
    ("dezasseis", 16),
    ("dezassete", 17),
    ("dezanove", 19),
    ("trinta e um", 31),
    ("vinte e um", 21),
    ("vinte e dois", 22),
    ("vinte e tres", 23),
    ("vinte e quatro", 24),
    ("vinte e cinco", 25),
    ("vinte e seis", 26),
    ("vinte e sete", 27),
    ("vinte e oito", 28),
    ("vinte e nove", 29),
    ("erste", 1),
    ("ersten", 1),
    ("zweite", 2),
    ("zweiten", 2),
    ("dritte", 3),
    ("dritten", 3),
    ("vierte", 4),
    ("vierten", 4),
    ("funfte", 5),
    ("funften", 5),
    ("sechste", 6),
    ("sechsten", 6),
    ("siebte", 7),
    ("siebten", 7),
    ("achte", 8),
    ("achten", 8),
    ("neunte", 9),
    ("neunten", 9),
    ("zehnte", 10),
    ("zehnten", 10),
    ("elfte", 11),
    ("elften", 11),
    ("zwolfte", 12),
    ("zwolften", 12),
    ("dreizehnte", 13),
    ("dreizehnten", 13),
    ("vierzehnte", 14),
    ("vierzehnten", 14),
    ("funfzehnte", 15),
    ("funfzehnten", 15),
    ("sechzehnte", 16),
    ("sechzehnten", 16),
    ("siebzehnte", 17),
    ("siebzehnten", 17),
    ("achtzehnte", 18),
    ("achtzehnten", 18),
    ("neunzehnte", 19),
    ("neunzehnten", 19),
    ("zwanzigste", 20),
    ("zwanzigsten", 20),
    ("dreissigste", 30),
    ("dreissigsten", 30),
    ("siebente", 7),
    ("siebenten", 7),
    ("einundzwanzigste", 21),
    ("einundzwanzigsten", 21),
    ("zweiundzwanzigste", 22),
    ("zweiundzwanzigsten", 22),
    ("dreiundzwanzigste", 23),
    ("dreiundzwanzigsten", 23),
    ("vierundzwanzigste", 24),
    ("vierundzwanzigsten", 24),
    ("funfundzwanzigste", 25),
    ("funfundzwanzigsten", 25),
    ("sechsundzwanzigste", 26),
    ("sechsundzwanzigsten", 26),
    ("siebenundzwanzigste", 27),
    ("siebenundzwanzigsten", 27),
    ("achtundzwanzigste", 28),
    ("achtundzwanzigsten", 28),
    ("neunundzwanzigste", 29),
    ("neunundzwanzigsten", 29),
    ("einunddreissigste", 31),
    ("einunddreissigsten", 31),
    ("eerste", 1),
    ("tweede", 2),
    ("derde", 3),
    ("vierde", 4),
    ("vijfde", 5),
    ("zesde", 6),
    ("zevende", 7),
    ("achtste", 8),
    ("negende", 9),
    ("tiende", 10),
    ("elfde", 11),
    ("twaalfde", 12),
    ("dertiende", 13),
    ("veertiende", 14),
    ("vijftiende", 15),
    ("zestiende", 16),
    ("zeventiende", 17),
    ("achttiende", 18),
    ("negentiende", 19),
    ("twintigste", 20),
    ("dertigste", 30),
    ("eenentwintigste", 21),
    ("tweeentwintigste", 22),
    ("drieentwintigste", 23),
    ("vierentwintigste", 24),
    ("vijfentwintigste", 25),
    ("zesentwintigste", 26),
    ("zevenentwintigste", 27),
    ("achtentwintigste", 28),
    ("negenentwintigste", 29),
    ("eenendertigste", 31),
];

const NUMBER_WORDS: &[(&str, i64)] = &[
    ("a", 1),
    ("an", 1),
    ("one", 1),
    ("a couple of", 2),
    ("a couple", 2),
    ("couple of", 2),
    ("couple", 2),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("fourteen", 14),
    ("fifteen", 15),
    ("twenty", 20),
    ("thirty", 30),
    ("forty-five", 45),
    ("forty five", 45),
    ("sixty", 60),
    ("ninety", 90),
    ("un", 1),
    ("une", 1),
    ("deux", 2),
    ("trois", 3),
    ("quatre", 4),
    ("cinq", 5),
    ("sept", 7),
    ("huit", 8),
    ("dix", 10),
    ("quinze", 15),
    ("vingt", 20),
    ("trente", 30),
    ("ein", 1),
    ("eine", 1),
    ("einer", 1),
    ("einem", 1),
    ("einen", 1),
    ("zwei", 2),
    ("drei", 3),
    ("vier", 4),
    ("funf", 5),
    ("fuenf", 5),
    ("sechs", 6),
    ("sieben", 7),
    ("acht", 8),
    ("zehn", 10),
    ("vierzehn", 14),
    ("zwanzig", 20),
    ("dreissig", 30),
    ("uno", 1),
    ("una", 1),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("cinco", 5),
    ("seis", 6),
    ("siete", 7),
    ("ocho", 8),
    ("diez", 10),
    ("quince", 15),
    ("veinte", 20),
    ("treinta", 30),
    ("due", 2),
    ("tre", 3),
    ("quattro", 4),
    ("cinque", 5),
    ("sei", 6),
    ("sette", 7),
    ("otto", 8),
    ("dieci", 10),
    ("quindici", 15),
    ("venti", 20),
    ("trenta", 30),
    ("um", 1),
    ("uma", 1),
    ("dois", 2),
    ("duas", 2),
    ("quatro", 4),
    ("sete", 7),
    ("oito", 8),
    ("dez", 10),
    ("vinte", 20),
    ("trinta", 30),
    ("een", 1),
    ("twee", 2),
    ("drie", 3),
    ("vijf", 5),
    ("zes", 6),
    ("zeven", 7),
    ("tien", 10),
    ("veertien", 14),
    ("twintig", 20),
    ("dertig", 30),
];

const ORDINAL_WORDS: &[(&str, i8)] = &[
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("sixth", 6),
    ("seventh", 7),
    ("eighth", 8),
    ("ninth", 9),
    ("tenth", 10),
    ("eleventh", 11),
    ("twelfth", 12),
    ("thirteenth", 13),
    ("fourteenth", 14),
    ("fifteenth", 15),
    ("sixteenth", 16),
    ("seventeenth", 17),
    ("eighteenth", 18),
    ("nineteenth", 19),
    ("twentieth", 20),
    ("thirtieth", 30),
];

fn ordinal_value(word: &[u8]) -> Option<i8> {
    let word = std::str::from_utf8(word).ok()?.trim();
    if let Some(&(_, v)) = ORDINAL_WORDS.iter().find(|(w, _)| *w == word) {
        return Some(v);
    }
    let (tens, rest) = if let Some(r) = word.strip_prefix("twenty") {
        (20, r)
    } else if let Some(r) = word.strip_prefix("thirty") {
        (30, r)
    } else {
        return None;
    };
    let rest = rest.trim_start_matches([' ', '-']);
    let unit = ORDINAL_WORDS.iter().find(|(w, _)| *w == rest).map(|&(_, v)| v)?;
    (unit < 10 && tens + unit <= 31).then_some(tens + unit)
}

fn number_value(word: &[u8]) -> Option<i64> {
    let word = std::str::from_utf8(word).ok()?.trim();
    if let Ok(n) = word.parse::<i64>() {
        return Some(n);
    }
    let word: String = word.split_whitespace().collect::<Vec<_>>().join(" ");
    NUMBER_WORDS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v)
}

fn alternation(words: impl Iterator<Item = String>) -> String {
    let mut words: Vec<String> = words.collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.dedup();
    words.iter().map(|w| regex::escape(w).replace(' ', r"\s+")).collect::<Vec<_>>().join("|")
}

struct Pattern {
    kind: Kind,
    re: Regex,
}

fn compile(kind: Kind, pattern: &str) -> Option<Pattern> {
    RegexBuilder::new(pattern).unicode(false).size_limit(1 << 24).build().ok().map(|re| Pattern { kind, re })
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let month = alternation(MONTHS.iter().map(|(w, _)| w.to_string()));
    let weekday = alternation(WEEKDAYS.iter().map(|(w, _)| w.to_string()));
    let pt_weekday = alternation(PT_SHORT_WEEKDAYS.iter().map(|(w, _)| w.to_string()));
    let en_short_weekday = alternation(EN_SHORT_WEEKDAYS.iter().map(|(w, _)| w.to_string()));
    let number = format!(r"\d{{1,3}}|{}", alternation(NUMBER_WORDS.iter().map(|(w, _)| w.to_string())));
    let ordinal = r"(?:twenty|thirty)[\s-]?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth";
    let day_suffix = r"(?:st|nd|rd|th|er|e|eme|o|a|\.)?";
    let day_word = alternation(DAY_WORDS.iter().map(|(w, _)| w.to_string()));
    let specs: Vec<(Kind, String)> = vec![
        (Kind::Iso, r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b".to_string()),
        (Kind::Numeric, r"\b(\d{1,2})([/.])(\d{1,2})(?:([/.])(\d{4}|\d{2}))?\b(\.)?".to_string()),
        (
            Kind::MonthDay,
            format!(r"\b({month})\.?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?"),
        ),
        (
            Kind::DayMonth,
            format!(r"\b(\d{{1,2}}){day_suffix}\s*(?:of\s+|de\s+|d'|di\s+)?({month})\b\.?(?:,?\s+(?:de\s+)?(\d{{4}})\b)?"),
        ),
        (Kind::OrdinalMonth, format!(r"\b(?:the\s+)?({ordinal})\s+(?:of\s+)?({month})\b")),
        (Kind::MonthOrdinal, format!(r"\b({month})\s+(?:the\s+)?({ordinal})\b")),
        (
            Kind::DayOfNextMonth,
            format!(r"\b(?:the\s+)?(\d{{1,2}}(?:st|nd|rd|th)|{ordinal})\s+of\s+(?:next|the\s+following|the\s+next)\s+month\b"),
        ),
        (
            Kind::EndOfNextMonth,
            r"\b(?:(?:the\s+)?end\s+of\s+(?:the\s+)?(?:next|following|coming)\s+month|(?:next|following)\s+month[\s-]?end|fin\s+(?:du\s+)?mois\s+prochain|fin\s+du\s+mois\s+suivant|ende\s+(?:des\s+)?(?:nachsten|naechsten|kommenden|folgenden)\s+monats|(?:fin|final|finales|fines)\s+del\s+(?:mes\s+(?:que\s+viene|proximo|siguiente)|proximo\s+mes)|fine\s+(?:del\s+)?(?:mese\s+prossimo|prossimo\s+mese|mese\s+successivo)|(?:fim|final)\s+do\s+(?:proximo\s+mes|mes\s+que\s+vem)|eind\s+(?:van\s+)?(?:de\s+)?volgende\s+maand)\b".to_string(),
        ),
        (
            Kind::EndOfMonth,
            r"\b(?:(?:the\s+)?end\s+of\s+(?:the\s+|this\s+|the\s+current\s+)?month|(?:this\s+)?month[\s-]?end|eom|(?:the\s+)?last\s+(?:business\s+|working\s+)?day\s+of\s+(?:the|this)\s+month|fin\s+(?:du|de|de\s+ce)\s+mois|fin\s+de\s+mois|ende\s+(?:des|dieses|diesen)\s+monats|ende\s+monat|monatsende|(?:a\s+)?(?:fin|final|finales|fines)\s+de(?:l)?\s+(?:este\s+)?mes|fine\s+(?:del\s+)?mese|fim\s+(?:do|deste)\s+mes|final\s+(?:do|deste)\s+mes|eind\s+(?:van\s+)?(?:de|deze)\s+maand|einde\s+(?:van\s+)?(?:de|deze)\s+maand)\b".to_string(),
        ),
        (
            Kind::EndOfYear,
            r"\b(?:(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?year|year[\s-]end|fin\s+(?:de\s+l'|d')annee|jahresende|ende\s+des\s+jahres|fin\s+de\s+ano|fine\s+anno|fim\s+do\s+ano|eind\s+van\s+het\s+jaar)\b".to_string(),
        ),
        (
            Kind::EndOfQuarter,
            r"\b(?:(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?quarter|quarter[\s-]end|fin\s+du\s+trimestre|quartalsende|ende\s+des\s+quartals|fin\s+del\s+trimestre|fine\s+trimestre|fim\s+do\s+trimestre|eind\s+van\s+het\s+kwartaal)\b".to_string(),
        ),
        (
            Kind::NextWeek,
            r"\b(?:(?:early\s+|end\s+of\s+|later\s+|sometime\s+|some\s+time\s+)?next\s+week|the\s+week\s+after\s+(?:this|next)?|(?:la\s+)?semaine\s+prochaine|(?:nachste|naechste|kommende)n?\s+woche|(?:la\s+)?semana\s+que\s+viene|(?:la\s+)?proxima\s+semana|(?:la\s+)?(?:prossima\s+settimana|settimana\s+prossima)|semana\s+que\s+vem|(?:volgende|komende)\s+week)\b".to_string(),
        ),
        (
            Kind::ThisWeek,
            r"\b(?:this\s+week|(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?week|eow|(?:by|before)\s+the\s+weekend|this\s+weekend|cette\s+semaine|fin\s+de\s+(?:la\s+)?semaine|avant\s+le\s+week-?end|ce\s+week-?end|diese\s+woche|ende\s+der\s+woche|bis\s+(?:zum\s+)?wochenende|dieses\s+wochenende|esta\s+(?:misma\s+)?semana|(?:a\s+)?(?:finales|final)\s+de\s+(?:esta\s+|la\s+)?semana|este\s+fin\s+de\s+semana|questa\s+settimana|entro\s+(?:la\s+)?(?:fine\s+(?:della\s+)?)?settimana|fine\s+settimana|(?:fim|final)\s+d[ae]\s+semana|deze\s+week|eind\s+van\s+de\s+week|voor\s+het\s+weekend|dit\s+weekend)\b".to_string(),
        ),
        (
            Kind::InPeriod,
            format!(
                r"\b(?:in|within|inside\s+of|in\s+the\s+next|within\s+the\s+next|over\s+the\s+next|in\s+(?:about|like|around|roughly|approximately)|dans|sous|d'ici|en|innerhalb(?:\s+von)?|binnen|dentro\s+de|en\s+un\s+plazo\s+de|en\s+los\s+proximos|tra|fra|entro|nei\s+prossimi|em|nos\s+proximos|daqui\s+a|over)\s+({number})\s+(?:more\s+)?(?:(business|working|ouvres|ouvrables|werk|arbeits|habiles|lavorativi|uteis)\s+)?(days?|weeks?|months?|fortnight|jours?|semaines?|mois|tage?n?|wochen?|monate?n?|werktage?n?|arbeitstage?n?|dias?|semanas?|mes|meses|giorni|giorno|settimane|settimana|mesi|mese|dagen|dag|weken|week|maanden|maand|werkdagen)\b"
            ),
        ),
        (Kind::InPeriod, format!(r"\b({number})\s+(?:(business|working)\s+)?(days?|weeks?|months?)\s+from\s+(?:now|today)\b")),
        // "give me ten days", "gebt mir zwei Wochen", "dame quince dias", "dammi dieci giorni".
        (
            Kind::InPeriod,
            format!(
                r"\b(?:give\s+(?:me|us)|geben\s+sie\s+(?:mir|uns)|gib\s+mir|donnez-(?:moi|nous)|laissez-(?:moi|nous)|dame|deme|denme|dammi|datemi|me\s+d[ea]|geef\s+(?:me|ons))\s+(?:(?:another|more|another\s+few|otros|altri|mais|nog)\s+)?({number})\s+(?:more\s+)?(?:(business|working)\s+)?(days?|weeks?|jours?|semaines?|tage?n?|wochen?|dias?|semanas?|giorni|settimane|dagen|weken)\b"
            ),
        ),
        // "sous huitaine", "dans la quinzaine": within 8 / 15 days.
        (Kind::InPeriod, r"\b(?:sous|dans\s+(?:la|une))\s+(huit|quinz)aine\b".to_string()),
        (Kind::WeekdayDay, format!(r"\b(?:(?:on|by|el|le|am|il|op|na|this|next|den|del)\s+)?({weekday})(?:'s)?,?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th|er|e)?\b")),
        (Kind::WeekdayNextWeek, format!(r"\b({weekday})\s+(?:of\s+)?next\s+week\b")),
        (Kind::WeekdayNextWeek, format!(r"\bnext\s+week\s+(?:on\s+)?({weekday})\b")),
        (
            Kind::EndOfNamedMonth,
            format!(r"\b(?:(?:the\s+)?end\s+of|late|ende|fin(?:\s+de)?|a\s+finales\s+de|finales\s+de|final\s+de|fine(?:\s+di)?|fim\s+de|eind(?:\s+van)?)\s+({month})\b"),
        ),
        (
            Kind::AfterTomorrow,
            r"\b(?:(?:the\s+)?day\s+after\s+tomorrow|apres-demain|apres\s+demain|ubermorgen|uebermorgen|pasado\s+manana|dopodomani|depois\s+de\s+amanha|overmorgen)\b".to_string(),
        ),
        (
            Kind::Today,
            r"\b(?:today|tonight|tonite|right\s+now|this\s+(?:evening|afternoon|morning)|later\s+today|(?:the\s+)?end\s+of\s+(?:the\s+)?(?:day|business)|eod|cob|close\s+of\s+business|aujourd'?\s?hui|ce\s+soir|dans\s+la\s+journee|heute(?:\s+(?:abend|nachmittag|morgen|noch))?|noch\s+heute|hoy|esta\s+(?:tarde|noche|manana)|oggi|stasera|in\s+giornata|hoje|vandaag|vanavond|vanmiddag|(?:doing|do|paying|pay|sending|send|transferring|transfer|processing)\s+(?:it|this|that|the\s+payment)\s+(?:right\s+)?now|right\s+after\s+(?:this|the)\s+call|this\s+arvo|jetzt\s+gleich|ahora\s+mismo|agora\s+mesmo|nu\s+meteen)\b".to_string(),
        ),
        (Kind::Tomorrow, r"\b(?:tomorrow|demain|morgen|manana|domani|amanha)\b".to_string()),
        (
            Kind::Weekday,
            format!(
                r"\b(?:(?:this|next|coming|this\s+coming|on|by|before|until|till|le|am|el|il|na|nesta|ate|a|op|uiterlijk|spatestens|entro|pour|jusqu'a|bis)\s+)?(?:(?:prochain|kommenden|nachsten|naechsten|proximo|prossimo|proxima|volgende|aanstaande)\s+)?({weekday})(?:'s)?\b(?:\s+(?:prochain|qui\s+vient|que\s+viene|prossimo|que\s+vem))?"
            ),
        ),
        (Kind::Weekday, format!(r"\b(?:na|nesta|ate|ate\s+a|pela|proxima)\s+({pt_weekday})\b")),
        (Kind::Weekday, format!(r"\b(?:this|next|coming|on|by|before|until|till)\s+({en_short_weekday})\b")),
        // "will pay wed", "paying fri", "sat morning", and a reply that opens with one ("Wed. Sorry").
        (
            Kind::Weekday,
            format!(r"\b(?:pay|paying|paid\s+by|send|sending|sent\s+by|transfer|do\s+it|done)\s+(?:it\s+|this\s+|u\s+|you\s+)?({en_short_weekday})\b"),
        ),
        (Kind::Weekday, format!(r"\b({en_short_weekday})\s+(?:morning|afternoon|evening|night|am|pm|latest|at\s+the\s+latest)\b")),
        (Kind::Weekday, format!(r"^\s*({en_short_weekday})\s*[.,!]")),
        // "quinta eu pago", "sexta acerto": a Portuguese short weekday before the payment verb.
        (Kind::Weekday, format!(r"\b({pt_weekday})(?:-?feira)?\s+(?:eu\s+)?(?:pago|acerto|transfiro|faco|deposito|mando|envio|quito)\b")),
        (
            Kind::DayOfMonthWord,
            format!(
                r"\b(?:le|au|jusqu'au|avant\s+le|d'ici\s+le|pour\s+le|am|zum|bis\s+zum|el|para\s+el|hasta\s+el|antes\s+del|il|entro\s+il|per\s+il|dia|no\s+dia|ate\s+o\s+dia|o\s+dia|op\s+de|voor\s+de|uiterlijk\s+de|tegen\s+de)\s+({day_word})\b"
            ),
        ),
        (
            Kind::DayOfMonth,
            format!(
                r"\b(?:on|by|before|until|till|for|around|the)\s+(?:the\s+)?(\d{{1,2}}(?:st|nd|rd|th)|{ordinal})(?:\s|$|[,;:!?)]|\.)"
            ),
        ),
        (
            Kind::DayOfMonth,
            r"\b(?:le|au|du|avant\s+le|d'ici\s+le|jusqu'au|am|bis\s+zum|bis|zum|el|del|antes\s+del|hasta\s+el|para\s+el|il|entro\s+il|per\s+il|dia|no\s+dia|ate\s+o\s+dia|ate\s+dia|op\s+de|voor\s+de|uiterlijk\s+de)\s+(?:dia\s+|giorno\s+)?(\d{1,2}(?:er|e|ste|de|o)?\.?)(?:\s|$|[,;:!?)])"
                .to_string(),
        ),
    ];
    let total = specs.len();
    // A pattern that fails to compile is a bug the tests catch (`broken`); at run time it is skipped.
    let patterns: Vec<Pattern> = specs.into_iter().filter_map(|(kind, p)| compile(kind, &p)).collect();
    let broken = total - patterns.len();
    let set = RegexSetBuilder::new(patterns.iter().map(|p| p.re.as_str()))
        .unicode(false)
        .size_limit(1 << 26)
        .dfa_size_limit(1 << 24)
        .build()
        .ok();
    Patterns { list: patterns, set, broken }
});

struct Patterns {
    /// Patterns that did not compile (0, checked by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    broken: usize,
    list: Vec<Pattern>,
    /// All patterns at once: one pass tells which ones are worth running.
    set: Option<RegexSet>,
}

/// "By COB Friday", "end of day tomorrow": the time of day only qualifies the date that follows.
static QUALIFIER_ONLY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    RegexBuilder::new(r"^(?:eod|cob|(?:the\s+)?end\s+of\s+(?:the\s+)?(?:day|business)|close\s+of\s+business)$")
        .unicode(false)
        .build()
        .ok()
});

/// A mention that is only a weekday (with its preposition).
static WEEKDAY_ONLY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let weekday =
        alternation(WEEKDAYS.iter().chain(PT_SHORT_WEEKDAYS).chain(EN_SHORT_WEEKDAYS).map(|(w, _)| w.to_string()));
    RegexBuilder::new(&format!(r"(?:{weekday})(?:'s)?\W*$")).unicode(false).build().ok()
});

fn month_value(word: &[u8]) -> Option<i8> {
    let word = std::str::from_utf8(word).ok()?;
    MONTHS.iter().find(|(w, _)| *w == word).map(|&(_, m)| m)
}

fn weekday_value(word: &[u8]) -> Option<Weekday> {
    let word = std::str::from_utf8(word).ok()?;
    let word: String = word.split_whitespace().collect::<Vec<_>>().join(" ");
    WEEKDAYS.iter().chain(PT_SHORT_WEEKDAYS).chain(EN_SHORT_WEEKDAYS).find(|(w, _)| *w == word).map(|&(_, d)| d)
}

fn parse_num<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The next date on or after `reference` with day-of-month `day`.
fn next_day_of_month(reference: Date, day: i8) -> Option<Date> {
    if !(1..=31).contains(&day) {
        return None;
    }
    let mut month_start = reference.first_of_month();
    for _ in 0..13 {
        if let Ok(d) = Date::new(month_start.year(), month_start.month(), day)
            && d >= reference
        {
            return Some(d);
        }
        month_start = month_start.checked_add(1.month()).ok()?;
    }
    None
}

/// `month`/`day` in the reference year, or the next year when already past.
fn upcoming(reference: Date, month: i8, day: i8, year: Option<i16>) -> Option<Date> {
    if let Some(y) = year {
        return Date::new(y, month, day).ok();
    }
    let this_year = Date::new(reference.year(), month, day).ok();
    match this_year {
        Some(d) if d >= reference => Some(d),
        _ => Date::new(reference.year().checked_add(1)?, month, day).ok(),
    }
}

fn year_of(bytes: &[u8]) -> Option<i16> {
    let y: i16 = parse_num(bytes)?;
    Some(if bytes.len() == 2 { 2000 + y } else { y })
}

fn friday_of_week(reference: Date) -> Option<Date> {
    let offset = i64::from(reference.weekday().to_monday_zero_offset());
    reference.checked_add((4 - offset).days()).ok()
}

fn add_business_days(reference: Date, n: i64) -> Option<Date> {
    let mut d = reference;
    let mut left = n.min(400);
    while left > 0 {
        d = d.tomorrow().ok()?;
        if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    Some(d)
}

fn resolve_kind(
    kind: Kind,
    caps: &regex::bytes::Captures<'_>,
    text: &[u8],
    reference: Date,
    lang: Lang,
) -> Option<Date> {
    let g = |i: usize| caps.get(i).map(|m| m.as_bytes());
    match kind {
        Kind::Today => Some(reference),
        Kind::Tomorrow => reference.tomorrow().ok(),
        Kind::AfterTomorrow => reference.checked_add(2.days()).ok(),
        Kind::Weekday => reference.nth_weekday(1, weekday_value(g(1)?)?).ok(),
        Kind::WeekdayDay => next_day_of_month(reference, parse_num(g(2)?)?),
        Kind::WeekdayNextWeek => {
            let monday = reference.checked_sub(i64::from(reference.weekday().to_monday_zero_offset()).days()).ok()?;
            let offset = i64::from(weekday_value(g(1)?)?.to_monday_zero_offset());
            monday.checked_add((7 + offset).days()).ok()
        }
        Kind::EndOfNamedMonth => {
            let month = month_value(g(1)?)?;
            let last = Date::new(reference.year(), month, 1).ok()?.last_of_month();
            if last >= reference {
                Some(last)
            } else {
                Some(Date::new(reference.year() + 1, month, 1).ok()?.last_of_month())
            }
        }
        Kind::DayOfMonthWord => {
            let word = std::str::from_utf8(g(1)?).ok()?;
            let word: String = word.split_whitespace().collect::<Vec<_>>().join(" ");
            let day = DAY_WORDS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v)?;
            next_day_of_month(reference, day)
        }
        Kind::DayOfMonth => {
            let raw = g(1)?;
            let digits: Vec<u8> = raw.iter().copied().take_while(u8::is_ascii_digit).collect();
            let day = if digits.is_empty() { ordinal_value(raw)? } else { parse_num(&digits)? };
            next_day_of_month(reference, day)
        }
        Kind::DayOfNextMonth => {
            let raw = g(1)?;
            let digits: Vec<u8> = raw.iter().copied().take_while(u8::is_ascii_digit).collect();
            let day = if digits.is_empty() { ordinal_value(raw)? } else { parse_num(&digits)? };
            let next = reference.first_of_month().checked_add(1.month()).ok()?;
            Date::new(next.year(), next.month(), day).ok()
        }
        Kind::EndOfMonth => Some(reference.last_of_month()),
        Kind::EndOfNextMonth => Some(reference.first_of_month().checked_add(1.month()).ok()?.last_of_month()),
        Kind::EndOfYear => Date::new(reference.year(), 12, 31).ok(),
        Kind::EndOfQuarter => {
            let last_month = ((reference.month() - 1) / 3 + 1) * 3;
            Some(Date::new(reference.year(), last_month, 1).ok()?.last_of_month())
        }
        Kind::NextWeek => friday_of_week(reference)?.checked_add(7.days()).ok(),
        Kind::ThisWeek => friday_of_week(reference).map(|f| f.max(reference)),
        Kind::InPeriod => {
            match g(1)? {
                b"huit" => return reference.checked_add(8.days()).ok(),
                b"quinz" => return reference.checked_add(15.days()).ok(),
                _ => {}
            }
            let n = number_value(g(1)?)?;
            if !(0..=400).contains(&n) {
                return None;
            }
            let business = g(2).is_some();
            let unit = g(3)?;
            let starts = |p: &[u8]| unit.starts_with(p);
            if starts(b"fortnight") {
                reference.checked_add((14 * n).days()).ok()
            } else if starts(b"week")
                || starts(b"semaine")
                || starts(b"woche")
                || starts(b"semana")
                || starts(b"settiman")
                || starts(b"weken")
            {
                reference.checked_add((7 * n).days()).ok()
            } else if starts(b"month") || starts(b"mois") || starts(b"monat") || starts(b"mes") || starts(b"maand") {
                reference.checked_add(n.months()).ok()
            } else if business || starts(b"werk") || starts(b"arbeits") {
                add_business_days(reference, n)
            } else {
                // French "huit jours" / "quinze jours" mean one / two weeks.
                reference.checked_add(n.days()).ok()
            }
        }
        Kind::MonthDay => upcoming(reference, month_value(g(1)?)?, parse_num(g(2)?)?, g(3).and_then(year_of)),
        Kind::DayMonth => upcoming(reference, month_value(g(2)?)?, parse_num(g(1)?)?, g(3).and_then(year_of)),
        Kind::OrdinalMonth => upcoming(reference, month_value(g(2)?)?, ordinal_value(g(1)?)?, None),
        Kind::MonthOrdinal => upcoming(reference, month_value(g(1)?)?, ordinal_value(g(2)?)?, None),
        Kind::Iso => Date::new(parse_num(g(1)?)?, parse_num(g(2)?)?, parse_num(g(3)?)?).ok(),
        Kind::Numeric => {
            let a: i8 = parse_num(g(1)?)?;
            let b: i8 = parse_num(g(3)?)?;
            let sep = g(2)?;
            let year = g(5).and_then(year_of);
            // "1.5 hours" is not a date: a dotted date needs a year or a closing dot.
            if sep == b"." && year.is_none() && g(6).is_none() {
                return None;
            }
            // "3/4 of the work", "24/7": a slash pair glued to more digits or words is no date.
            let end = caps.get(0)?.end();
            if text.get(end).is_some_and(|c| c.is_ascii_digit() || *c == b'/') {
                return None;
            }
            let us = lang == Lang::En && sep == b"/";
            let (month, day) = if us && a <= 12 {
                (a, b)
            } else if !us && b <= 12 {
                (b, a)
            } else if a <= 12 {
                (a, b)
            } else {
                (b, a)
            };
            upcoming(reference, month, day, year)
        }
    }
}

/// Words right before a match that make it a past or non-date use.
fn vetoed(kind: Kind, text: &[u8], start: usize, end: usize) -> bool {
    let before = &text[start.saturating_sub(24)..start];
    let after = &text[end.min(text.len())..(end + 24).min(text.len())];
    let ends_with_word = |w: &[u8]| {
        let trimmed = before.trim_ascii_end();
        trimmed.ends_with(w)
            && (trimmed.len() == w.len() || !trimmed[trimmed.len() - w.len() - 1].is_ascii_alphanumeric())
    };
    let starts_with_word = |w: &[u8]| {
        let trimmed = after.trim_ascii_start();
        trimmed.starts_with(w) && trimmed.get(w.len()).is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    match kind {
        Kind::Weekday => [
            "last",
            "past",
            "previous",
            "dernier",
            "letzten",
            "letzte",
            "vergangenen",
            "pasado",
            "scorso",
            "passado",
            "passada",
            "vorige",
            "afgelopen",
        ]
        .iter()
        .any(|w| ends_with_word(w.as_bytes())),
        Kind::Tomorrow => {
            // "heute morgen" (this morning), "guten morgen", "por la mañana" (in the morning).
            ["heute", "gestern", "guten", "la", "de", "por", "esta", "cada", "jeden"]
                .iter()
                .any(|w| ends_with_word(w.as_bytes()))
        }
        Kind::DayOfMonth => {
            // "le 15 000 €", "el 15%", "the 2nd half", "am 15.03" (handled as a full date), "le 15 mars"
            // (handled as a month date), "the 3rd reminder".
            after.first().is_some_and(|c| c.is_ascii_digit())
                || after.trim_ascii_start().first().is_some_and(|c| matches!(c, b'%' | b'$' | b'\xe2' | b'\xc2'))
                || [
                    "half",
                    "payment",
                    "payments",
                    "instalment",
                    "installment",
                    "part",
                    "time",
                    "reminder",
                    "notice",
                    "invoice",
                    "one",
                    "batch",
                    "round",
                    "tranche",
                    "of",
                    "quarter",
                    "week",
                    "month",
                    "year",
                    "floor",
                    "jours",
                    "mois",
                    "dias",
                    "days",
                    "giorni",
                    "tage",
                    "dagen",
                    "euros",
                    "eur",
                    "dollars",
                    "heures",
                    "h",
                    "hours",
                    "uhr",
                    "ore",
                    "horas",
                    "uur",
                    "person",
                    "contact",
                    "line",
                    "item",
                    "page",
                ]
                .iter()
                .any(|w| starts_with_word(w.as_bytes()))
        }
        _ => false,
    }
}

/// Every date phrase in a normalised text, non-overlapping, in text order.
pub(crate) fn find(text: &[u8], reference: Date, lang: Lang) -> Vec<Mention> {
    let mut found: Vec<(usize, usize, Date)> = Vec::new();
    let patterns = &*PATTERNS;
    let Some(set) = patterns.set.as_ref() else { return Vec::new() };
    for index in set.matches(text).iter() {
        let pattern = &patterns.list[index];
        for caps in pattern.re.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            let (start, end) = (whole.start(), whole.end());
            if vetoed(pattern.kind, text, start, end) {
                continue;
            }
            if let Some(date) = resolve_kind(pattern.kind, &caps, text, reference, lang) {
                found.push((start, end, date));
            }
        }
    }
    // Longest phrase wins where phrases overlap ("end of next month" over "next month", "20. März" over "am 20.").
    found.sort_by_key(|&(s, e, _)| (std::cmp::Reverse(e - s), s));
    let mut kept: Vec<(usize, usize, Date)> = Vec::new();
    for m in found {
        if kept.iter().all(|k| m.1 <= k.0 || m.0 >= k.1) {
            kept.push(m);
        }
    }
    kept.sort_by_key(|&(s, _, _)| s);
    // "Monday the 16th", "Friday, March 20": the weekday only names the date that follows.
    let is_weekday = |m: &(usize, usize, Date)| WEEKDAY_ONLY.as_ref().is_some_and(|re| re.is_match(&text[m.0..m.1]));
    let mut out: Vec<Mention> = Vec::with_capacity(kept.len());
    for (i, m) in kept.iter().enumerate() {
        let named_next = kept.get(i + 1).is_some_and(|n| {
            let gap = &text[m.1..n.0];
            gap.len() <= 6
                && gap.iter().all(|c| matches!(c, b' ' | b',' | b't' | b'h' | b'e' | b'l' | b'a' | b'm' | b'o' | b'n'))
        });
        let qualifier = QUALIFIER_ONLY.as_ref().is_some_and(|re| re.is_match(&text[m.0..m.1]));
        if !(named_next && (is_weekday(m) || qualifier)) {
            out.push(Mention { start: m.0, end: m.1, date: m.2 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(PATTERNS.broken, 0);
        assert!(PATTERNS.set.is_some());
    }

    #[test]
    fn spoken_and_short_forms() {
        let r = Date::constant(2026, 10, 8); // a Thursday
        let one = |t: &str| extract(t, r).first().map(|(_, d)| *d);
        assert_eq!(one("je vais vous payer le dix"), Some(Date::constant(2026, 10, 10)));
        assert_eq!(one("ich zahl das am zwanzigsten"), Some(Date::constant(2026, 10, 20)));
        assert_eq!(one("el quince te lo pago"), Some(Date::constant(2026, 10, 15)));
        assert_eq!(one("pago il ventuno"), Some(Date::constant(2026, 10, 21)));
        assert_eq!(one("eu pago no dia vinte e dois"), Some(Date::constant(2026, 10, 22)));
        assert_eq!(one("betaal ik op de eenentwintigste"), Some(Date::constant(2026, 10, 21)));
        assert_eq!(one("will pay wed"), Some(Date::constant(2026, 10, 14)));
        assert_eq!(one("Fri. sorry"), Some(Date::constant(2026, 10, 9)));
        assert_eq!(one("quinta eu pago"), Some(Date::constant(2026, 10, 15)));
        assert_eq!(one("doing it now"), Some(r));
        assert_eq!(one("give me ten days"), Some(Date::constant(2026, 10, 18)));
        assert_eq!(one("innerhalb von 14 Tagen"), Some(Date::constant(2026, 10, 22)));
        assert_eq!(one("le paiement interviendra sous huitaine"), Some(Date::constant(2026, 10, 16)));
        assert_eq!(one("esta misma semana"), Some(Date::constant(2026, 10, 9)));
        // Not dates: "sat" and "wed" as words, a number of things.
        assert_eq!(one("I sat down and wed them"), None);
        assert_eq!(one("pagaremos los dos"), None);
    }
    use jiff::civil::date;

    fn r(text: &str, reference: Date) -> Option<Date> {
        resolve(text, reference)
    }

    #[test]
    fn table_rows() {
        let wed = date(2026, 3, 4); // a Wednesday
        assert_eq!(r("today", wed), Some(wed));
        assert_eq!(r("tonight", wed), Some(wed));
        assert_eq!(r("tomorrow", wed), Some(date(2026, 3, 5)));
        assert_eq!(r("Friday", wed), Some(date(2026, 3, 6)));
        assert_eq!(r("next Friday", wed), Some(date(2026, 3, 6)));
        assert_eq!(r("on Wednesday", wed), Some(date(2026, 3, 11)));
        assert_eq!(r("the 15th", wed), Some(date(2026, 3, 15)));
        assert_eq!(r("on the 4th", wed), Some(wed));
        assert_eq!(r("on the 2nd", wed), Some(date(2026, 4, 2)));
        assert_eq!(r("by the 31st", date(2026, 4, 5)), Some(date(2026, 5, 31)));
        assert_eq!(r("end of the month", wed), Some(date(2026, 3, 31)));
        assert_eq!(r("EOM", wed), Some(date(2026, 3, 31)));
        assert_eq!(r("by month end", wed), Some(date(2026, 3, 31)));
        assert_eq!(r("end of next month", wed), Some(date(2026, 4, 30)));
        assert_eq!(r("next week", wed), Some(date(2026, 3, 13)));
        assert_eq!(r("next week", date(2026, 3, 8)), Some(date(2026, 3, 13)));
        assert_eq!(r("this week", wed), Some(date(2026, 3, 6)));
        assert_eq!(r("by the weekend", date(2026, 3, 7)), Some(date(2026, 3, 7)));
        assert_eq!(r("end of the week", date(2026, 3, 6)), Some(date(2026, 3, 6)));
        assert_eq!(r("in 10 days", wed), Some(date(2026, 3, 14)));
        assert_eq!(r("within five days", wed), Some(date(2026, 3, 9)));
        assert_eq!(r("in two weeks", wed), Some(date(2026, 3, 18)));
        assert_eq!(r("in a couple of weeks", wed), Some(date(2026, 3, 18)));
        assert_eq!(r("in a couple weeks", wed), Some(date(2026, 3, 18)));
        assert_eq!(r("March 20", wed), Some(date(2026, 3, 20)));
        assert_eq!(r("20 March", wed), Some(date(2026, 3, 20)));
        assert_eq!(r("March 20th", wed), Some(date(2026, 3, 20)));
        assert_eq!(r("March 2", wed), Some(date(2027, 3, 2)));
        assert_eq!(r("2026-03-20", wed), Some(date(2026, 3, 20)));
        assert_eq!(r("the eighth of january", date(2026, 12, 18)), Some(date(2027, 1, 8)));
        assert_eq!(r("on the twentieth", wed), Some(date(2026, 3, 20)));
        assert_eq!(r("the twenty-first", wed), Some(date(2026, 3, 21)));
    }

    #[test]
    fn other_languages() {
        let mon = date(2026, 11, 23);
        assert_eq!(r("Le virement partira vendredi.", mon), Some(date(2026, 11, 27)));
        assert_eq!(r("wird morgen angewiesen", mon), Some(date(2026, 11, 24)));
        assert_eq!(r("die Überweisung erfolgt nächste Woche", date(2026, 11, 2)), Some(date(2026, 11, 13)));
        assert_eq!(r("die Überweisung erfolgt am 20. März", date(2026, 3, 12)), Some(date(2026, 3, 20)));
        assert_eq!(r("am 15. bezahlt", mon), Some(date(2026, 12, 15)));
        assert_eq!(r("la transferencia se realizará el 10/04", date(2026, 3, 27)), Some(date(2026, 4, 10)));
        assert_eq!(r("el día 15", mon), Some(date(2026, 12, 15)));
        assert_eq!(r("el jueves sin falta", date(2026, 10, 3)), Some(date(2026, 10, 8)));
        assert_eq!(r("la semana que viene", mon), Some(date(2026, 12, 4)));
        assert_eq!(r("il bonifico partirà entro fine mese", date(2026, 3, 31)), Some(date(2026, 3, 31)));
        assert_eq!(r("será feito no dia 15", date(2026, 8, 18)), Some(date(2026, 9, 15)));
        assert_eq!(r("na sexta-feira", mon), Some(date(2026, 11, 27)));
        assert_eq!(r("wij betalen volgende week", mon), Some(date(2026, 12, 4)));
        assert_eq!(r("fin du mois", mon), Some(date(2026, 11, 30)));
        assert_eq!(r("Ende des Monats", mon), Some(date(2026, 11, 30)));
        assert_eq!(r("dans quinze jours", mon), Some(date(2026, 12, 8)));
        assert_eq!(r("in zwei Wochen", mon), Some(date(2026, 12, 7)));
        assert_eq!(r("20 de marzo", mon), Some(date(2027, 3, 20)));
    }

    #[test]
    fn numeric_order() {
        let d = date(2026, 1, 10);
        assert_eq!(r("we will pay 3/20", d), Some(date(2026, 3, 20)));
        assert_eq!(r("we will pay 20/3", d), Some(date(2026, 3, 20)));
        assert_eq!(r("le paiement partira le 10/04", d), Some(date(2026, 4, 10)));
        assert_eq!(r("zahlung am 10.04.", d), Some(date(2026, 4, 10)));
        assert_eq!(r("10.04.2027", d), Some(date(2027, 4, 10)));
        assert_eq!(r("it took 1.5 hours", d), None);
    }

    #[test]
    fn non_dates() {
        let d = date(2026, 1, 10);
        assert_eq!(r("we'll pay it soon", d), None);
        assert_eq!(r("the second half", d), None);
        assert_eq!(r("Guten Morgen", d), None);
        assert_eq!(r("le 15 000 €", d), None);
        assert_eq!(r("we may pay", d), None);
        assert_eq!(r("Marco Rinaldi", d), None);
    }
}
