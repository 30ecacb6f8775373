//! mKTL sources inside the daemon, against stand-in peers the test starts:
//! a dead or stalling peer delays neither the daemon's start nor another
//! service's files, and a connected but silent source is an error with a
//! code, mailed even when its instrument is not scheduled.

use std::time::{Duration, Instant};

use koa_dep::config::{MktlSource, Service, Source};
use koa_dep::db::Status;
use koa_dep_tests::mktl::{Answers, Peer};
use koa_dep_tests::*;

use crate::daemon::{base, count, small_nires, smtp_server, start};

/// A TCP port that accepts connections and never speaks: a ZeroMQ handshake
/// with it waits for ever (the nastiest dead peer).
fn black_hole() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, addr)
}

pub(crate) fn mktl_service(name: &str, instrument: &str, source: MktlSource) -> Service {
    Service {
        name: name.into(),
        ktl: name.into(),
        instrument: instrument.into(),
        trigger: "LASTFILE".into(),
        required_value: None,
        path_format: None,
        zfill: Default::default(),
        heartbeat: Some("ITERATION".into()),
        heartbeat_s: Some(600.0),
        transfer: false,
        source: Source::Mktl(source),
        history_table: None,
        files: vec![],
        enabled: true,
        silent_minutes: None,
    }
}

#[test]
fn a_dead_mktl_peer_delays_neither_the_start_nor_another_service() {
    let rt = runtime();
    let s = Scratch::new();
    let (mut cfg, incoming) = crate::daemon::watched(&s, &["NIRES"]);
    cfg.daemon.http_listen = Some("127.0.0.1:0".into());
    let (_hole, hole) = black_hole();
    rt.block_on(async {
        // a working publisher whose every trigger needs a read from the black hole
        let peer = Peer::start(Answers::default()).await;
        let mut slow = mktl_service("kpfslow", "KPF", MktlSource {
            publish: Some(format!("tcp://127.0.0.1:{}", peer.pub_port)),
            request: Some(hole.clone()),
            ..Default::default()
        });
        slow.path_format = Some("{OUTDIR}/{LASTFILE}".into());
        // and a service whose publisher is the black hole itself
        let dead = mktl_service("hiresdead", "HIRES", MktlSource { publish: Some(hole.clone()), ..Default::default() });
        cfg.service.push(slow);
        cfg.service.push(dead);
        // a name KOA's koa_status.service cannot hold is refused at start
        let mut long = cfg.clone();
        long.service[0].name = "a_seventeen_chars".into();
        assert!(koa_dep::daemon::Daemon::new(long).await.err().expect("refused").to_string().contains("16 characters"));
        let t0 = Instant::now();
        let (d, stop, task) = start(cfg).await;
        assert!(wait_until(5, || async { d.http_addr().is_some() }).await, "the status page listens at once");
        let started = t0.elapsed();
        // keep kpfslow's lane busy: a trigger every 50 ms, each waiting on its read
        let busy = {
            let frames = vec![b"kpfslow.lastfile.".to_vec(), b"a".to_vec(), br#"{"value": "x.fits", "time": 1.0}"#.to_vec()];
            let peer = std::sync::Arc::new(peer);
            let p = peer.clone();
            (peer, tokio::spawn(async move {
                loop {
                    p.publish(&frames).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }))
        };
        // kpfslow's reads fail one after the other (each waits out its connect bound)
        let problem = |n: &'static str| {
            let v = d.services_view();
            v.iter().find(|s| s.name == n).and_then(|s| s.source_problem.clone()).map(|p| p.0)
        };
        assert!(wait_until(20, || async { problem("kpfslow") == Some("KTL_READ_ERROR") }).await, "kpfslow's reads fail");
        // meanwhile NIRES frames are archived as usual
        let dir = incoming.join("nires");
        std::fs::create_dir_all(&dir).unwrap();
        let t = Instant::now();
        for n in 0..3u32 {
            let (name, f) = small_nires(n);
            drop_frame(&f, &dir.join(name));
        }
        assert!(wait_until(60, || async { count(&d, Status::Complete).await == 3 }).await, "the watched frames are archived");
        let took = t.elapsed();
        eprintln!("start {:.2} s; 3 frames beside a stalled source in {:.2} s", started.as_secs_f64(), took.as_secs_f64());
        assert!(took < Duration::from_secs(20), "no frame waited behind kpfslow's reads: {took:?}");
        // both failing sources say so, with their codes
        assert!(wait_until(20, || async { problem("hiresdead") == Some("KTL_START_ERROR") }).await, "{:?}", d.services_view());
        assert!(
            d.counters().broadcasts.load(std::sync::atomic::Ordering::Relaxed) < 100,
            "kpfslow's lane is still busy with its backlog (the test exercised a stall)"
        );
        let rows = d.db().sources().await.unwrap();
        let dead = rows.iter().find(|r| r.service == "hiresdead").expect("recorded");
        assert_eq!((dead.state.as_str(), dead.status_code.as_deref()), ("DOWN", Some("KTL_START_ERROR")));
        let metrics = reqwest::get(format!("http://{}/metrics", d.http_addr().unwrap())).await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains(r#"koa_dep_source_problem{service="kpfslow",instrument="KPF",code="KTL_READ_ERROR"} 1"#),
            "a failed read shows in /metrics while the subscription is up: {}",
            metrics.lines().filter(|l| l.contains("source")).collect::<Vec<_>>().join("\n")
        );
        let report = koa_dep::report::errors(d.db(), false, None).await.unwrap();
        assert!(report.text().contains("source: hiresdead (HIRES) DOWN KTL_START_ERROR"), "{}", report.text());
        busy.1.abort();
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}

#[test]
fn a_connected_silent_source_is_reported_even_when_not_scheduled() {
    let rt = runtime();
    let s = Scratch::new();
    let mut cfg = base(&s);
    rt.block_on(async {
        let (tx, mut mails) = tokio::sync::mpsc::unbounded_channel();
        cfg.notify.smtp_host = Some("127.0.0.1".into());
        cfg.notify.smtp_port = smtp_server(tx).await;
        cfg.notify.to = vec!["koaadmin@example.org".into()];
        let peer = Peer::start(Answers::default()).await;
        let mut svc = mktl_service("nids", "NIRES", MktlSource { publish: Some(format!("tcp://127.0.0.1:{}", peer.pub_port)), ..Default::default() });
        svc.heartbeat_s = Some(1.5);
        cfg.service = vec![svc];
        let (d, stop, task) = start(cfg).await;
        let mail = tokio::time::timeout(Duration::from_secs(30), mails.recv()).await.expect("a mail").unwrap();
        assert!(mail.contains("[NIRES] KTL_SOURCE_SILENT"), "{mail}");
        let rows = d.db().sources().await.unwrap();
        assert_eq!(rows[0].state, "DOWN");
        assert_eq!(rows[0].status_code.as_deref(), Some("KTL_SOURCE_SILENT"));
        // the heartbeat starts: the source is up again
        let beat = vec![b"nids.iteration.".to_vec(), b"a".to_vec(), br#"{"value": 1, "time": 1.0}"#.to_vec()];
        assert!(
            wait_until(30, || async {
                peer.publish(&beat).await;
                d.db().sources().await.unwrap().first().is_some_and(|r| r.state == "UP")
            })
            .await,
            "UP after the first broadcast"
        );
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        peer.stop().await;
    });
}

#[test]
fn a_path_built_from_an_empty_keyword_is_a_lost_trigger_with_a_code() {
    let rt = runtime();
    let s = Scratch::new();
    let mut cfg = base(&s);
    rt.block_on(async {
        let (tx, mut mails) = tokio::sync::mpsc::unbounded_channel();
        cfg.notify.smtp_host = Some("127.0.0.1".into());
        cfg.notify.smtp_port = smtp_server(tx).await;
        cfg.notify.to = vec!["koaadmin@example.org".into()];
        // the daemon restarted and forgot its values: OUTDIR answers null
        let mut answers = Answers::default();
        let rep = |target: &str, payload: &str| {
            vec![
                vec![b"a".to_vec(), vec![], b"ACK".to_vec(), vec![], vec![], vec![]],
                vec![b"a".to_vec(), vec![], b"REP".to_vec(), target.as_bytes().to_vec(), vec![], payload.as_bytes().to_vec()],
            ]
        };
        answers.set("GET", "nids.outdir", b"", rep("nids.outdir", r#"{"value": null, "time": 1.0}"#));
        answers.set("GET", "nids.lastfile", b"", rep("nids.lastfile", r#"{"value": null, "time": 1.0}"#));
        let peer = Peer::start(answers).await;
        let mut svc = mktl_service("nids", "NIRES", MktlSource {
            publish: Some(format!("tcp://127.0.0.1:{}", peer.pub_port)),
            request: Some(format!("tcp://127.0.0.1:{}", peer.rep_port)),
            ..Default::default()
        });
        svc.path_format = Some("{OUTDIR}/x.fits".into());
        cfg.service = vec![svc];
        let (d, stop, task) = start(cfg).await;
        let trigger = vec![b"nids.lastfile.".to_vec(), b"a".to_vec(), br#"{"value": "s1.fits", "time": 1.0}"#.to_vec()];
        let mut mail = None;
        for _ in 0..100 {
            peer.publish(&trigger).await;
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), mails.recv()).await {
                mail = Some(m);
                break;
            }
        }
        let mail = mail.expect("the lost trigger is reported");
        assert!(mail.contains("[NIRES] KEYWORD_UNPOPULATED") && mail.contains("OUTDIR is empty"), "{mail}");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        drop(d);
        peer.stop().await;
    });
}
