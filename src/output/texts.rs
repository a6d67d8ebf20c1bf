//! The words of the teaching views, one table per language. A text is a template with
//! `{name}` placeholders filled from what the packets show; adding a language is adding a
//! table (and its name to [`Lang::parse`]).

/// A language of the human views' verdicts, explanations and readings (`--lang`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// English, the default, and the fallback for a key another table lacks.
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// The language a `--lang` value names (`en`, `english`, `ru`, `russian`, any case);
    /// `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Lang::En),
            "ru" | "russian" => Some(Lang::Ru),
            _ => None,
        }
    }

    fn table(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::En => EN,
            Lang::Ru => RU,
        }
    }

    /// The template for `key`; English when a table lacks it.
    pub fn get(self, key: &str) -> &'static str {
        let find = |t: &'static [(&'static str, &'static str)]| {
            t.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        };
        find(self.table()).or_else(|| find(EN)).unwrap_or("")
    }

    /// Fills `{name}` placeholders of `key`'s template.
    pub fn fill(self, key: &str, args: &[(&str, &str)]) -> String {
        let mut out = self.get(key).to_string();
        for (k, v) in args {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

/// The English table: (key, template) pairs, templates with `{name}` placeholders. Every
/// key the program uses is here.
pub const EN: &[(&str, &str)] = &[
    ("cut_bytes", "{n} bytes"),
    ("l_hs1", "handshake 1/3"),
    ("l_hs2", "handshake 2/3"),
    ("l_hs3", "handshake 3/3"),
    ("l_fin", "teardown"),
    ("l_rst", "reset"),
    ("l_data", "data"),
    ("l_ack", "ack"),
    ("l_keepalive", "keep-alive"),
    ("l_upgrade", "websocket upgrade"),
    ("l_key", "key"),
    ("l_version", "version"),
    ("l_protocols", "protocols"),
    ("l_offers", "offers"),
    ("l_accepted", "websocket accepted"),
    ("l_accept_ok", "accept ok"),
    ("l_accept_bad", "accept MISMATCH"),
    ("l_extensions", "extensions"),
    ("l_no_ext", "no extensions"),
    ("l_subprotocol", "subprotocol"),
    ("l_refused", "websocket upgrade refused"),
    ("wm_heartbeat", "heartbeat {what}"),
    ("wm_login", "{name} logs in to room {room}"),
    ("wm_joined", "{name} joined"),
    ("wm_joined_online", "{name} joined (online: {online})"),
    ("wm_say_all", "{from}→ all: {content}"),
    ("wm_say_private", "{from}→ {to} (private): {content}"),
    ("wm_say_private_anon", "{from}(private): {content}"),
    ("wm_left", "{name} left"),
    ("chat_seen_by", "seen by {names}"),
    ("s_verdict", "verdict"),
    ("s_conn", "conn"),
    ("s_client", "client"),
    ("s_server", "server"),
    ("s_secs", "secs"),
    ("s_c2s", "c2s msg/bytes"),
    ("s_s2c", "s2c msg/bytes"),
    ("s_deflate", "deflate"),
    ("s_close", "close"),
    ("s_gaps", "gaps"),
    ("s_viol", "viol"),
    (
        "s_overflow",
        "... and events of {n} more connections not tabulated",
    ),
    ("s_reconnect", "reconnect #{n} after {secs} s"),
    ("s_refused", "refused (nothing listening)"),
    ("s_cut_server", "cut by the server ({how}), no close frame"),
    (
        "s_cut_heartbeat",
        "cut by the server ({how}) after an unanswered heartbeat",
    ),
    ("s_cut_client", "cut by the client ({how}), no close frame"),
    (
        "v_refused",
        "connection refused: nothing is listening on {server}",
    ),
    (
        "v_cut_server",
        "closed by the server ({how}) without a websocket close frame",
    ),
    (
        "v_cut_client",
        "closed by the client ({how}) without a websocket close frame",
    ),
    (
        "v_cut_heartbeat",
        "closed by the server ({how}) without a websocket close frame, {secs} s after a heartbeat the client did not answer",
    ),
    (
        "v_reconnect",
        "reconnect #{n}: {client}'s previous connection to {server} ended {secs} s before",
    ),
    (
        "legend",
        "TCP flags as tcpdump prints them: [S] SYN (open a connection), [S.] SYN+ACK, [.] ACK only, [P.] PSH+ACK (data: deliver it now), [F.] FIN+ACK (this side has no more data), [R] RST (abort). Times are UTC.",
    ),
    (
        "conn",
        "Connection {id}: the client {client} talks to the server {server}.",
    ),
    ("client", "client"),
    ("server", "server"),
    (
        "syn",
        "TCP connection setup, step 1/3: the client's local port {cport} sends SYN to the server's port {sport}. Its initial sequence number (ISN) is {isn}, chosen at random.",
    ),
    ("options", "Options: {opts}."),
    ("opt_mss", "MSS {v} (the largest segment it accepts)"),
    (
        "opt_ws",
        "window scale {v} (advertised windows are multiplied by {mul})",
    ),
    (
        "opt_sack",
        "SACK permitted (it can acknowledge out-of-order blocks)",
    ),
    (
        "opt_ts",
        "timestamps (TSval {v}, for round-trip times and protection against wrapped sequence numbers)",
    ),
    (
        "synack",
        "Step 2/3: the server answers SYN+ACK. Its own ISN is {isn}; ack {ack} = the client's ISN {cisn} + 1, because a SYN takes one number of sequence space.",
    ),
    (
        "hsack",
        "Step 3/3: the client acknowledges the server's SYN: ack {ack} = the server's ISN {sisn} + 1. The connection is established. From here on sequence numbers are shown relative to each side's ISN (seq 1 = the first data byte), as tcpdump does: relative {rel} is absolute {abs}.",
    ),
    (
        "request",
        "The client asks to switch this connection to the websocket protocol with an HTTP/1.1 request ({len} bytes):",
    ),
    (
        "request_plain",
        "An HTTP request that is not a websocket upgrade:",
    ),
    (
        "h_upgrade",
        "Upgrade: websocket + Connection: Upgrade: the protocol switch being asked for.",
    ),
    (
        "h_key",
        "Sec-WebSocket-Key: {v}: 16 random bytes in base64; the server must prove it read them.",
    ),
    (
        "h_version",
        "Sec-WebSocket-Version: {v}: the protocol version of RFC 6455.",
    ),
    (
        "h_ext",
        "Sec-WebSocket-Extensions: {v}: extensions the client offers; the server chooses.",
    ),
    (
        "h_proto",
        "Sec-WebSocket-Protocol: {v}: application subprotocols offered.",
    ),
    (
        "h_origin",
        "Origin: {v}: the page that opened the socket; the server may check it.",
    ),
    (
        "response_101",
        "The server agrees: \"{status} {reason}\". From the next byte on, both directions carry websocket frames.",
    ),
    (
        "accept",
        "Sec-WebSocket-Accept proves the server read the key: key + the GUID {guid}, hashed with SHA-1 = {sha1}, in base64 = {b64}.",
    ),
    ("accept_ok", "The server sent {got}: it matches."),
    (
        "accept_bad",
        "The server sent {got}: it does NOT match; a browser would drop the connection.",
    ),
    (
        "ext_none",
        "No Sec-WebSocket-Extensions in the answer: no extension is in use, so no message is compressed.",
    ),
    (
        "ext_deflate",
        "permessage-deflate agreed ({v}): data messages may be compressed; RSV1 on a message's first frame says so.",
    ),
    (
        "ctx_keep",
        "The {side} keeps its compression context between messages (context takeover): a message may refer back to earlier ones, so a capture must hold them all to inflate later ones.",
    ),
    (
        "ctx_reset",
        "The {side} resets its compressor after every message (no context takeover): each message inflates on its own.",
    ),
    (
        "response_other",
        "The server answers \"{status} {reason}\": the upgrade is refused and the connection stays HTTP.",
    ),
    (
        "response_plain",
        "The server answers \"{status} {reason}\": plain HTTP, the request asked for no websocket upgrade.",
    ),
    (
        "response_101_other",
        "The server answers \"{status} {reason}\": it switches protocols, but not to websocket as RFC 6455 section 4 describes it; what follows is not decoded unless it is HTTP again (see the notice that follows).",
    ),
    (
        "frame",
        "Frame from the {who}: byte 0 = {b0}: FIN={fin} ({fintext}), RSV1-3={rsv}, opcode {op} ({opname}); byte 1 = {b1}: MASK={mask}, payload length {len} ({enc}).",
    ),
    ("fin_last", "the last frame of its message"),
    ("fin_more", "more frames of this message follow"),
    ("enc7", "7-bit form, 0 to 125"),
    ("enc16", "126, then a 16-bit length"),
    ("enc64", "127, then a 64-bit length"),
    (
        "masked",
        "Masking key {key}: payload byte i is XORed with key byte i mod 4. First bytes on the wire: {wire}; unmasked: {plain}.",
    ),
    (
        "unmasked",
        "Server frames are not masked: the payload is readable as sent.",
    ),
    (
        "compressed",
        "Compressed: {wire} bytes on the wire inflate to {len} bytes.",
    ),
    ("fragments", "Sent in {n} frames; shown reassembled."),
    (
        "ping",
        "Ping: a heartbeat; the peer must answer with a pong carrying the same payload.",
    ),
    ("pong", "Pong: the answer to a ping."),
    (
        "close_first",
        "The {who} starts the closing handshake: close {code} ({meaning}).",
    ),
    (
        "close_reply",
        "The {who} answers with its own close, {code} ({meaning}): the websocket closing handshake is complete; TCP teardown follows.",
    ),
    ("close_empty", "A close frame without a status code."),
    (
        "fin",
        "The {who} sends FIN: it will send no more data (a half-close; the other side may still send).",
    ),
    (
        "rst",
        "The {who} sends RST: the connection is aborted at once. (A peer answers with RST when data reaches a socket that is already closed.)",
    ),
    (
        "rst_refused",
        "The server answers the SYN with RST: the connection is refused. Nothing is listening on {server}: no program has that port open (or a firewall rejects it); the client may try again.",
    ),
    (
        "cut",
        "The {who} ended the connection without a websocket close frame: the session was cut, not closed (a browser reports close code 1006).",
    ),
    (
        "reconnect",
        "A reconnect (#{n}): {client} connects again {secs} s after its previous connection to this server ended.",
    ),
    ("binary", "Binary payload, as tcpdump -X shows it:"),
];

/// The Russian table, keyed as [`EN`]; a key missing here is said in English.
pub const RU: &[(&str, &str)] = &[
    ("cut_bytes", "{n} байт"),
    ("l_hs1", "рукопожатие 1/3"),
    ("l_hs2", "рукопожатие 2/3"),
    ("l_hs3", "рукопожатие 3/3"),
    ("l_fin", "завершение"),
    ("l_rst", "сброс"),
    ("l_data", "данные"),
    ("l_ack", "подтверждение"),
    ("l_keepalive", "keep-alive"),
    ("l_upgrade", "переход на websocket"),
    ("l_key", "ключ"),
    ("l_version", "версия"),
    ("l_protocols", "подпротоколы"),
    ("l_offers", "предлагает"),
    ("l_accepted", "websocket принят"),
    ("l_accept_ok", "accept верен"),
    ("l_accept_bad", "accept НЕ СОВПАДАЕТ"),
    ("l_extensions", "расширения"),
    ("l_no_ext", "без расширений"),
    ("l_subprotocol", "подпротокол"),
    ("l_refused", "переход на websocket отклонён"),
    ("wm_heartbeat", "проверка связи ({what})"),
    ("wm_login", "{name} входит в комнату {room}"),
    ("wm_joined", "{name} в чате"),
    ("wm_joined_online", "{name} в чате (в сети: {online})"),
    ("wm_say_all", "{from}→ всем: {content}"),
    ("wm_say_private", "{from}→ {to} (лично): {content}"),
    ("wm_say_private_anon", "{from}(лично): {content}"),
    ("wm_left", "{name} покидает чат"),
    ("chat_seen_by", "видели: {names}"),
    ("s_verdict", "итог"),
    ("s_conn", "соед"),
    ("s_client", "клиент"),
    ("s_server", "сервер"),
    ("s_secs", "сек"),
    ("s_c2s", "c2s сообщ/байт"),
    ("s_s2c", "s2c сообщ/байт"),
    ("s_deflate", "сжатие"),
    ("s_close", "закрытие"),
    ("s_gaps", "дыры"),
    ("s_viol", "наруш"),
    (
        "s_overflow",
        "... и события ещё {n} соединений не вошли в таблицу",
    ),
    ("s_reconnect", "переподключение №{n} через {secs} с"),
    ("s_refused", "отказ (никто не слушает)"),
    ("s_cut_server", "оборвано сервером ({how}), без close"),
    (
        "s_cut_heartbeat",
        "оборвано сервером ({how}): нет ответа на heartbeat",
    ),
    ("s_cut_client", "оборвано клиентом ({how}), без close"),
    (
        "v_refused",
        "в соединении отказано: на {server} никто не слушает",
    ),
    (
        "v_cut_server",
        "сервер закрыл соединение ({how}) без фрейма close",
    ),
    (
        "v_cut_client",
        "клиент закрыл соединение ({how}) без фрейма close",
    ),
    (
        "v_cut_heartbeat",
        "сервер закрыл соединение ({how}) без фрейма close через {secs} с после heartbeat, на который клиент не ответил",
    ),
    (
        "v_reconnect",
        "переподключение №{n}: предыдущее соединение {client} с {server} закончилось за {secs} с до этого",
    ),
    (
        "legend",
        "Флаги TCP в записи tcpdump: [S] SYN (открыть соединение), [S.] SYN+ACK, [.] только ACK, [P.] PSH+ACK (данные: передать приложению сразу), [F.] FIN+ACK (у этой стороны данных больше нет), [R] RST (обрыв). Время указано в UTC.",
    ),
    (
        "conn",
        "Соединение {id}: клиент {client} и сервер {server}.",
    ),
    ("client", "клиент"),
    ("server", "сервер"),
    (
        "syn",
        "Установка TCP-соединения, шаг 1/3: локальный порт клиента {cport} отправляет SYN на порт сервера {sport}. Начальный номер последовательности (ISN) клиента {isn} выбран случайно.",
    ),
    ("options", "Опции: {opts}."),
    (
        "opt_mss",
        "MSS {v} (наибольший сегмент, который сторона готова принять)",
    ),
    (
        "opt_ws",
        "масштаб окна {v} (объявленное окно умножается на {mul})",
    ),
    (
        "opt_sack",
        "SACK разрешён (можно подтверждать блоки, пришедшие не по порядку)",
    ),
    (
        "opt_ts",
        "временные метки (TSval {v}: для измерения задержки и защиты от переполнения номеров)",
    ),
    (
        "synack",
        "Шаг 2/3: сервер отвечает SYN+ACK. Его собственный ISN {isn}; ack {ack} = ISN клиента {cisn} + 1, потому что SYN занимает один номер последовательности.",
    ),
    (
        "hsack",
        "Шаг 3/3: клиент подтверждает SYN сервера: ack {ack} = ISN сервера {sisn} + 1. Соединение установлено. Дальше номера показаны относительно ISN каждой стороны (seq 1 = первый байт данных), как в tcpdump: относительный {rel} — это абсолютный {abs}.",
    ),
    (
        "request",
        "Клиент просит переключить соединение на протокол websocket HTTP/1.1-запросом ({len} байт):",
    ),
    (
        "request_plain",
        "HTTP-запрос, не являющийся запросом на websocket:",
    ),
    (
        "h_upgrade",
        "Upgrade: websocket + Connection: Upgrade: запрашиваемая смена протокола.",
    ),
    (
        "h_key",
        "Sec-WebSocket-Key: {v}: 16 случайных байт в base64; сервер должен доказать, что прочитал их.",
    ),
    (
        "h_version",
        "Sec-WebSocket-Version: {v}: версия протокола по RFC 6455.",
    ),
    (
        "h_ext",
        "Sec-WebSocket-Extensions: {v}: расширения, которые предлагает клиент; выбирает сервер.",
    ),
    (
        "h_proto",
        "Sec-WebSocket-Protocol: {v}: предлагаемые подпротоколы приложения.",
    ),
    (
        "h_origin",
        "Origin: {v}: страница, открывшая сокет; сервер может её проверить.",
    ),
    (
        "response_101",
        "Сервер соглашается: «{status} {reason}». Со следующего байта в обе стороны идут websocket-фреймы.",
    ),
    (
        "accept",
        "Sec-WebSocket-Accept доказывает, что сервер прочитал ключ: ключ + GUID {guid}, хеш SHA-1 = {sha1}, в base64 = {b64}.",
    ),
    ("accept_ok", "Сервер прислал {got}: совпадает."),
    (
        "accept_bad",
        "Сервер прислал {got}: НЕ совпадает; браузер разорвал бы соединение.",
    ),
    (
        "ext_none",
        "В ответе нет Sec-WebSocket-Extensions: расширения не используются, сообщения не сжимаются.",
    ),
    (
        "ext_deflate",
        "Согласовано permessage-deflate ({v}): сообщения с данными могут быть сжаты; об этом говорит RSV1 в первом фрейме сообщения.",
    ),
    (
        "ctx_keep",
        "Сторона «{side}» сохраняет контекст сжатия между сообщениями (context takeover): сообщение может ссылаться на предыдущие, поэтому для распаковки нужны все они.",
    ),
    (
        "ctx_reset",
        "Сторона «{side}» сбрасывает компрессор после каждого сообщения (no context takeover): каждое сообщение распаковывается само по себе.",
    ),
    (
        "response_other",
        "Сервер отвечает «{status} {reason}»: переход на websocket отклонён, соединение остаётся HTTP.",
    ),
    (
        "response_plain",
        "Сервер отвечает «{status} {reason}»: обычный HTTP, запрос не просил перехода на websocket.",
    ),
    (
        "response_101_other",
        "Сервер отвечает «{status} {reason}»: протокол переключается, но не на websocket, как его описывает раздел 4 RFC 6455; дальнейшие байты не разбираются, если это не снова HTTP (см. следующее уведомление).",
    ),
    (
        "frame",
        "Фрейм от стороны «{who}»: байт 0 = {b0}: FIN={fin} ({fintext}), RSV1-3={rsv}, опкод {op} ({opname}); байт 1 = {b1}: MASK={mask}, длина данных {len} ({enc}).",
    ),
    ("fin_last", "последний фрейм сообщения"),
    ("fin_more", "за ним следуют другие фреймы сообщения"),
    ("enc7", "7-битная форма, от 0 до 125"),
    ("enc16", "126, затем 16-битная длина"),
    ("enc64", "127, затем 64-битная длина"),
    (
        "masked",
        "Маска {key}: байт данных i складывается по XOR с байтом маски i mod 4. Первые байты в сети: {wire}; после снятия маски: {plain}.",
    ),
    (
        "unmasked",
        "Фреймы сервера не маскируются: данные читаются как есть.",
    ),
    (
        "compressed",
        "Сжато: {wire} байт в сети распаковываются в {len} байт.",
    ),
    ("fragments", "Отправлено {n} фреймами; показано собранным."),
    (
        "ping",
        "Ping: проверка связи; другая сторона должна ответить pong с теми же данными.",
    ),
    ("pong", "Pong: ответ на ping."),
    (
        "close_first",
        "Сторона «{who}» начинает закрытие websocket: close {code} ({meaning}).",
    ),
    (
        "close_reply",
        "Сторона «{who}» отвечает своим close, {code} ({meaning}): закрытие websocket завершено; дальше закрывается TCP.",
    ),
    ("close_empty", "Фрейм close без кода статуса."),
    (
        "fin",
        "Сторона «{who}» отправляет FIN: данных от неё больше не будет (полузакрытие; другая сторона ещё может отправлять).",
    ),
    (
        "rst",
        "Сторона «{who}» отправляет RST: соединение обрывается сразу. (RST отправляют, когда данные приходят в уже закрытый сокет.)",
    ),
    (
        "rst_refused",
        "Сервер отвечает на SYN сегментом RST: в соединении отказано. На {server} никто не слушает: ни одна программа не открыла этот порт (или его отвергает межсетевой экран); клиент может попробовать снова.",
    ),
    (
        "cut",
        "Сторона «{who}» завершила соединение без фрейма close: сеанс оборван, а не закрыт (браузер сообщит код 1006).",
    ),
    (
        "reconnect",
        "Переподключение (№{n}): {client} подключается снова через {secs} с после того, как его предыдущее соединение с этим сервером закончилось.",
    ),
    ("binary", "Двоичные данные в виде tcpdump -X:"),
];

/// RFC 6455 section 7.4.1 close codes, per language.
pub fn close_meaning(lang: Lang, code: u16) -> &'static str {
    let en = crate::output::human::close_name(code);
    match lang {
        Lang::En => en.unwrap_or("application-defined"),
        Lang::Ru => match code {
            1000 => "нормальное закрытие",
            1001 => "уход со страницы / остановка",
            1002 => "ошибка протокола",
            1003 => "неподдерживаемые данные",
            1007 => "неверные данные",
            1008 => "нарушение политики",
            1009 => "сообщение слишком велико",
            1010 => "нужное расширение не согласовано",
            1011 => "внутренняя ошибка",
            1012 => "перезапуск сервиса",
            1013 => "попробуйте позже",
            _ => "определён приложением",
        },
    }
}

/// An application protocol's reading in `lang`, made from its structured form (the `app`
/// object of `--json`: `{"protocol": "workerman-chat", "type": "say", "from": …}`). `None`
/// when the reading is to be shown as the protocol reader wrote it: in English, or for a
/// protocol or message this table does not know.
pub fn reading(lang: Lang, app: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    if lang == Lang::En || app.get("protocol").and_then(Value::as_str) != Some("workerman-chat") {
        return None;
    }
    let s = |k: &str| app.get(k).and_then(Value::as_str);
    let ty = s("type")?;
    let key = |k: &str| format!("wm_{k}");
    Some(match ty {
        "ping" | "pong" => lang.fill(&key("heartbeat"), &[("what", ty)]),
        "login" => match (s("room"), app.get("online").and_then(Value::as_array)) {
            (Some(room), _) => lang.fill(&key("login"), &[("name", s("name")?), ("room", room)]),
            (None, Some(online)) if !online.is_empty() => {
                let names: Vec<&str> = online.iter().filter_map(Value::as_str).collect();
                lang.fill(
                    &key("joined_online"),
                    &[("name", s("name")?), ("online", &names.join(", "))],
                )
            }
            (None, _) => lang.fill(&key("joined"), &[("name", s("name")?)]),
        },
        "say" => {
            let content = s("content")?;
            let from = s("from").map_or(String::new(), |f| format!("{f} "));
            match s("to") {
                Some("all") => lang.fill(&key("say_all"), &[("from", &from), ("content", content)]),
                Some(to) => lang.fill(
                    &key("say_private"),
                    &[("from", &from), ("to", to), ("content", content)],
                ),
                None => lang.fill(
                    &key("say_private_anon"),
                    &[("from", &from), ("content", content)],
                ),
            }
        }
        "logout" => lang.fill(&key("left"), &[("name", s("name")?)]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readings of samples/workerman-chat.pcap as the workerman-chat reader makes them
    /// (src/app/workerman.rs), in Russian; English is left to the reader's own text.
    #[test]
    fn workerman_readings_in_russian() {
        use crate::app::{Annotator, AppMessage, Side, workerman::Workerman};
        let mut a = Workerman::default();
        let mut ru = |side, text: &str| {
            let r = a.read(&AppMessage::text(side, text)).unwrap();
            assert_eq!(reading(Lang::En, &r.json), None);
            reading(Lang::Ru, &r.json).unwrap()
        };
        let c = Side::Client;
        let srv = Side::Server;
        assert_eq!(
            ru(c, r#"{"type":"login","client_name":"mynick","room_id":1}"#),
            "mynick входит в комнату 1"
        );
        assert_eq!(
            ru(
                srv,
                r#"{"type":"login","client_id":"a","client_name":"second","time":"t","client_list":{"a":"mynick","b":"second"}}"#
            ),
            "second в чате (в сети: mynick, second)"
        );
        assert_eq!(
            ru(
                c,
                r#"{"type":"say","to_client_id":"all","to_client_name":"所有人","content":"hi, all !"}"#
            ),
            "mynick → всем: hi, all !"
        );
        assert_eq!(
            ru(
                c,
                r#"{"type":"say","to_client_id":"7f","to_client_name":"second","content":"psst"}"#
            ),
            "mynick → second (лично): psst"
        );
        assert_eq!(
            ru(
                srv,
                r#"{"type":"say","from_client_id":"7f","from_client_name":"mynick","to_client_id":"7f2","content":"<b>x</b>"}"#
            ),
            "mynick (лично): <b>x</b>"
        );
        assert_eq!(
            ru(
                srv,
                r#"{"type":"logout","from_client_id":"7f","from_client_name":"second","time":"t"}"#
            ),
            "second покидает чат"
        );
        assert_eq!(ru(srv, r#"{"type":"ping"}"#), "проверка связи (ping)");
        // The English table says what the reader says.
        let en = |k: &str, args: &[(&str, &str)]| Lang::En.fill(k, args);
        assert_eq!(
            en("wm_login", &[("name", "mynick"), ("room", "1")]),
            "mynick logs in to room 1"
        );
        assert_eq!(
            en("wm_say_all", &[("from", "mynick "), ("content", "hi")]),
            "mynick → all: hi"
        );
        assert_eq!(
            reading(
                Lang::Ru,
                &serde_json::json!({"protocol":"mqtt","type":"publish"})
            ),
            None
        );
    }

    #[test]
    fn every_language_has_every_key_and_placeholder() {
        for (key, en) in EN {
            let ru = RU.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            let ru = ru.unwrap_or_else(|| panic!("ru lacks {key}"));
            let holes = |s: &str| {
                let mut v: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}'))
                    .map(|(h, _)| h.to_string())
                    .collect();
                v.sort();
                v
            };
            assert_eq!(holes(en), holes(ru), "placeholders of {key}");
        }
        assert_eq!(EN.len(), RU.len());
    }
}
