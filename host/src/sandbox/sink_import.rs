//! The host side of the contract's `sink` import, defined by hand rather than by `bindgen!`.
//!
//! The generated binding lifts a batch into owned records: a `String` allocated and copied for
//! every tag, field and content of every record, which was a quarter of the whole mapping's
//! time. Here a batch is lifted as handles into the guest's memory (`WasmList`, `WasmStr`),
//! checked as UTF-8 in place, and lent to the sink as a [`BatchRef`] for the length of the call.
//! The sink encodes what it needs before the guest runs again.
//!
//! Even in place, `send` and `send-tagged` cost a lookup and a check per string, a third of
//! the mapping's time; `send-packed` (1.2) takes the batch's text as one string and its shape
//! as numbers (read by `rds_record::packed`), which is what the library's mappers send.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Instant;

use wasmtime::component::{ComponentType, Lift, Linker, WasmList, WasmStr};
use wasmtime::{AsContext, StoreContextMut};

use super::contract::{HOST_CONTRACT, PACKAGE};
use super::state::{FailedItem, HostState, MAX_FAILED_ITEMS};
use crate::sink::{BatchRef, FieldRef, RecordRef};
use rds_record::packed::Unpacked;

/// `log-record`, as handles into the guest's memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RecordView {
    category: WasmStr,
    time: i64,
    tags: WasmList<(WasmStr, WasmStr)>,
    fields: WasmList<(WasmStr, FieldView)>,
    content: WasmStr,
    line: i64,
}

/// `field-value`, as a handle when it is text.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum FieldView {
    #[component(name = "text")]
    Text(WasmStr),
    #[component(name = "integer")]
    Integer(i64),
    #[component(name = "float")]
    Float(f64),
    #[component(name = "boolean")]
    Boolean(bool),
}

type Tags = WasmList<(WasmStr, WasmStr)>;

/// Defines `sink.send` (1.0), `sink.send-tagged` (1.1), `sink.send-packed` (1.2) and
/// `sink.item-failed` (1.3). The linker matches a component that imports an older `sink` to
/// these by semver.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut sink = linker.instance(&format!("{PACKAGE}/sink@{HOST_CONTRACT}"))?;
    sink.func_wrap_async(
        "send",
        |store: StoreContextMut<'_, HostState>, (batch,): (WasmList<RecordView>,)| {
            Box::new(async move { Ok((deliver(store, None, batch).await?,)) })
        },
    )?;
    sink.func_wrap_async(
        "send-tagged",
        |store: StoreContextMut<'_, HostState>,
         (stream_tags, batch): (Tags, WasmList<RecordView>)| {
            Box::new(async move { Ok((deliver(store, Some(stream_tags), batch).await?,)) })
        },
    )?;
    sink.func_wrap_async(
        "send-packed",
        |store: StoreContextMut<'_, HostState>,
         (text, ends, words): (WasmStr, WasmList<u32>, WasmList<i64>)| {
            Box::new(async move { Ok((deliver_packed(store, text, ends, words).await?,)) })
        },
    )?;
    sink.func_wrap(
        "item-failed",
        |mut store: StoreContextMut<'_, HostState>, (item, reason): (String, String)| {
            let failed = &mut store.data_mut().failed_items;
            if failed.len() < MAX_FAILED_ITEMS {
                failed.push(FailedItem { item, reason });
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// `send-packed`: the text checked as UTF-8 once, the numbers read where they lie.
async fn deliver_packed(
    mut store: StoreContextMut<'_, HostState>,
    text: WasmStr,
    ends: WasmList<u32>,
    words: WasmList<i64>,
) -> wasmtime::Result<Result<(), String>> {
    if let Some(refused) = refused_before(&store) {
        return Ok(refused);
    }
    let started = Instant::now();
    let shared = store.data().sink.clone();
    let mut sink = shared.lock().await;
    // The sink encodes the batch before `send` returns; the future borrows only the sink, so
    // the guest's memory is no longer borrowed when it is awaited.
    let outcome = {
        let sending = {
            let cx = store.as_context();
            text.to_str(&cx).and_then(|text| {
                let unpacked = Unpacked::read(&text, ends.as_le_slice(&cx), words.as_le_slice(&cx))
                    .map_err(|e| {
                        wasmtime::Error::msg(format!(
                            "the mapper's sink.send-packed batch breaks the layout: {e}"
                        ))
                    })?;
                let records = unpacked.records();
                Ok(sink.send(&unpacked.batch(&records)))
            })
        };
        match sending {
            Ok(sending) => Ok(sending.await),
            Err(e) => Err(e),
        }
    };
    drop(sink);
    store.data_mut().send_time += started.elapsed();
    settle(&mut store, outcome)
}

/// The least a tag or field entry takes in the guest's memory: two string handles (a pointer
/// and a length each, four bytes apiece) for a tag; a key handle and more for a field.
const MIN_ENTRY_BYTES: usize = 16;

/// The size of the guest's linear memory now: the largest it grew to, since it never shrinks.
fn guest_memory(store: &StoreContextMut<'_, HostState>) -> usize {
    store.data().limits.peak_bytes
}

/// Where one record's tags and fields are in the batch-wide vectors.
struct Span {
    tags: Range<usize>,
    fields: Range<usize>,
}

async fn deliver(
    mut store: StoreContextMut<'_, HostState>,
    stream_tags: Option<Tags>,
    batch: WasmList<RecordView>,
) -> wasmtime::Result<Result<(), String>> {
    if let Some(refused) = refused_before(&store) {
        return Ok(refused);
    }
    let started = Instant::now();
    // First the handles, which lifting needs the store mutably for: checked to lie inside the
    // guest's memory, nothing copied. One vector per batch, not per record.
    let views: Vec<RecordView> = batch.iter(&mut store)?.collect::<wasmtime::Result<_>>()?;
    let memory = guest_memory(&store);
    // Every list lies in the guest's memory, but the records may all name the same one: the
    // entries they add up to are checked against what that memory could hold before anything
    // is sized from them.
    let (tag_count, field_count) = views.iter().fold((0usize, 0usize), |(t, f), v| {
        (
            t.saturating_add(v.tags.len()),
            f.saturating_add(v.fields.len()),
        )
    });
    let entries = tag_count.saturating_add(field_count);
    if entries.saturating_mul(MIN_ENTRY_BYTES) > memory {
        return Err(wasmtime::Error::msg(format!(
            "the mapper's sink.send batch names {entries} tags and fields, more than its {memory} \
             bytes of memory can hold: its records share lists, and the host reads each list once"
        )));
    }
    // Sized up front rather than grown by doubling, which copies them over and over.
    let mut tag_handles = Vec::with_capacity(tag_count);
    let mut field_handles = Vec::with_capacity(field_count);
    let mut spans = Vec::with_capacity(views.len());
    for v in &views {
        let (t, f) = (tag_handles.len(), field_handles.len());
        for tag in v.tags.iter(&mut store)? {
            tag_handles.push(tag?);
        }
        for field in v.fields.iter(&mut store)? {
            field_handles.push(field?);
        }
        spans.push(Span {
            tags: t..tag_handles.len(),
            fields: f..field_handles.len(),
        });
    }
    let stream_handles: Vec<(WasmStr, WasmStr)> = match &stream_tags {
        Some(list) => list.iter(&mut store)?.collect::<wasmtime::Result<_>>()?,
        None => Vec::new(),
    };
    let shared = store.data().sink.clone();
    let mut sink = shared.lock().await;
    let outcome = {
        let sent = 'lent: {
            let cx = store.as_context();
            // Strings too may be shared between records; what is read in all is bounded by
            // the memory they lie in, so a shared string cannot make the host read it again
            // and again.
            let unread = std::cell::Cell::new(memory);
            let text = |s: &WasmStr| -> wasmtime::Result<Cow<'_, str>> {
                let t = s.to_str(&cx)?;
                match unread.get().checked_sub(t.len()) {
                    Some(left) => unread.set(left),
                    None => {
                        return Err(wasmtime::Error::msg(format!(
                            "the mapper's sink.send batch holds more text than its {memory} \
                             bytes of memory: its records share strings, and the host reads each \
                             string once"
                        )));
                    }
                }
                Ok(t)
            };
            let pair =
                |(k, v): &(WasmStr, WasmStr)| -> wasmtime::Result<(Cow<'_, str>, Cow<'_, str>)> {
                    Ok((text(k)?, text(v)?))
                };
            let read = || -> wasmtime::Result<_> {
                let stream: Vec<_> = stream_handles.iter().map(pair).collect::<Result<_, _>>()?;
                let tags: Vec<_> = tag_handles.iter().map(pair).collect::<Result<_, _>>()?;
                let fields: Vec<(Cow<'_, str>, FieldText<'_>)> = field_handles
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            FieldView::Text(s) => FieldText::Text(text(s)?),
                            FieldView::Integer(i) => FieldText::Other(FieldRef::Integer(*i)),
                            FieldView::Float(f) => FieldText::Other(FieldRef::Float(*f)),
                            FieldView::Boolean(b) => FieldText::Other(FieldRef::Boolean(*b)),
                        };
                        Ok((text(k)?, v))
                    })
                    .collect::<wasmtime::Result<_>>()?;
                let heads: Vec<(Cow<'_, str>, Cow<'_, str>)> = views
                    .iter()
                    .map(|v| Ok((text(&v.category)?, text(&v.content)?)))
                    .collect::<wasmtime::Result<_>>()?;
                Ok((stream, tags, fields, heads))
            };
            let (stream, tags, fields, heads) = match read() {
                Ok(parts) => parts,
                Err(e) => break 'lent Err(e),
            };
            let stream = strs(&stream);
            let tags = strs(&tags);
            let fields: Vec<(&str, FieldRef<'_>)> = fields
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        FieldText::Text(s) => FieldRef::Text(s),
                        FieldText::Other(o) => *o,
                    };
                    (k.as_ref(), v)
                })
                .collect();
            let records: Vec<RecordRef<'_>> = views
                .iter()
                .zip(&spans)
                .zip(&heads)
                .map(|((v, span), (category, content))| RecordRef {
                    category,
                    time: v.time,
                    tags: &tags[span.tags.clone()],
                    fields: &fields[span.fields.clone()],
                    content,
                    line: v.line,
                })
                .collect();
            Ok(sink.send(&BatchRef {
                stream_tags: &stream,
                records: &records,
            }))
        };
        match sent {
            Ok(sending) => Ok(sending.await),
            Err(e) => Err(e),
        }
    };
    drop(sink);
    store.data_mut().send_time += started.elapsed();
    settle(&mut store, outcome)
}

/// Gives the guest the outcome: a send the sink refused is the guest's `err` (its reason kept
/// for the host, which fails the invocation), a batch the host could not read a trap.
fn settle(
    store: &mut StoreContextMut<'_, HostState>,
    outcome: wasmtime::Result<Result<(), crate::sink::SinkError>>,
) -> wasmtime::Result<Result<(), String>> {
    // Not UTF-8, out of bounds, or against the packed layout: the guest broke the contract.
    Ok(match outcome? {
        Ok(()) => Ok(()),
        Err(e) => {
            let message = e.to_string();
            store.data_mut().refused.get_or_insert(e);
            Err(message)
        }
    })
}

/// The guest's `err` for a send after an earlier one was refused: it never reaches the sink.
fn refused_before(store: &StoreContextMut<'_, HostState>) -> Option<Result<(), String>> {
    store.data().refused.as_ref().map(|first| {
        Err(format!(
            "an earlier send of this event was refused, so this one is too: {first}"
        ))
    })
}

fn strs<'a>(v: &'a [(Cow<'_, str>, Cow<'_, str>)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect()
}

/// A field's value while its text is still a `Cow` from the guest's memory.
enum FieldText<'a> {
    Text(Cow<'a, str>),
    Other(FieldRef<'static>),
}
