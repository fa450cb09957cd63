//! Checkpoints of files gone for good expire after `checkpoint_ttl_secs`;
//! those of files still there do not, however long they sit idle.

mod services;

use std::time::{Duration, Instant};

use services::shipper::{consume_until, distinct_lines, line, LineWriter, ShipSetup};
use services::{wait_for, Daemon, Services};

/// Paths that have a checkpoint in the shipper's checkpoint file now.
fn checkpointed(data: &std::path::Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(data.join("checkpoints.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn checkpoints_of_deleted_files_expire_and_of_present_files_stay() {
    let services = Services::start();
    let setup = ShipSetup::new(
        &services,
        &["*.log"],
        "checkpoint_ttl_secs = 2\ncheckpoint_interval_ms = 100\nrotated_idle_close_ms = 200",
    );
    let keep = setup.logs.join("keep.log");
    let gone = setup.logs.join("gone.log");
    for (path, stream) in [(&keep, "keep"), (&gone, "gone")] {
        let mut w = LineWriter::create(path);
        for i in 0..10 {
            w.push(&line(stream, i));
        }
        w.flush();
    }
    let mut shipper = Daemon::start("ship", &setup.config, setup.dir.path());
    consume_until(&setup.kafka, &setup.topic, Duration::from_secs(60), |r| {
        distinct_lines(r) >= 20
    });
    let both = [keep.display().to_string(), gone.display().to_string()];
    assert!(
        wait_for(Duration::from_secs(10), || {
            let c = checkpointed(&setup.data);
            both.iter().all(|p| c.contains(p))
        }),
        "both files checkpointed: {:?}",
        checkpointed(&setup.data)
    );

    std::fs::remove_file(&gone).unwrap();
    let deleted = Instant::now();
    assert!(
        wait_for(Duration::from_secs(20), || !checkpointed(&setup.data)
            .contains(&both[1])),
        "checkpoint of the deleted file still there {:?} after deletion: {:?}",
        deleted.elapsed(),
        checkpointed(&setup.data)
    );
    // Not before its TTL (2 s) ran out since it was last seen.
    assert!(deleted.elapsed() >= Duration::from_secs(2), "expired too early");
    // The file still there keeps its checkpoint well past the TTL.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        checkpointed(&setup.data).contains(&both[0]),
        "checkpoint of a present, idle file expired: {:?}",
        checkpointed(&setup.data)
    );
    shipper.assert_running();
    assert!(
        shipper.terminate(Duration::from_secs(30)),
        "shipper did not drain cleanly"
    );
}
