#![no_main]
//! What the collector emulator decodes: frames, packs (incl. ZipPack inflation), hellos.
use libfuzzer_sys::fuzz_target;
use rds_forwarder_fuzz::whatap::{frame, handshake, license::License, pack};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((f, used))) = frame::Frame::parse(data) {
        assert!(used <= data.len());
        if let Ok(l) = License::parse("x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok") {
            let _ = handshake::read_hello(&l, &f);
        }
    }
    let _ = frame::OneWayFrame::parse(data);
    if let Ok(pack::Pack::Zip(z)) = pack::Pack::parse(data) {
        let _ = z.unpack();
    }
    // The collector's own path: records read in place, tag hashes checked.
    let mut tags = pack::TagHashes::default();
    let _ = pack::read_records(data, |p| {
        let _ = p.tags.entries().count();
        tags.check(&p)
    });
});
