//! The webhook under load and abuse, on the local control plane with
//! trainhook running as a real process: concurrent deliveries, bodies over
//! the limit, near-miss signatures and bodies that only verify over their
//! raw bytes.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use support::world::{World, model_run_body, status_names};
use trainhook::signature::{sign_sha1, sign_sha256};

/// Default body limit of `trainhook run`, in bytes.
const BODY_LIMIT: usize = 1024 * 1024;

/// Sends `body` to `POST /model_run` with the given headers.
async fn post(world: &World, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/model_run", world.trainhook.url))
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }

    let response = request.body(body).send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_deliveries_make_one_run() {
    let world = World::new(
        "hundred",
        json!({"localcluster.trainhook.dev/run-seconds": "2"}),
    )
    .await;
    let model_run_id = "delivered-100-times";
    let body = model_run_body(model_run_id);

    let deliveries = (0..100).map(|_| world.trainhook.post_model_run(&body));
    let answers = join_all(deliveries).await;

    for (code, answer) in &answers {
        assert_eq!(*code, 200, "{answer}");
        assert_eq!(answer["name"], model_run_id, "{answer}");
    }
    let created = answers
        .iter()
        .filter(|(_, answer)| answer["created"] == true)
        .count();
    assert_eq!(created, 1, "exactly one delivery creates the run");

    world.acknowledged(model_run_id, "COMPLETE").await;
    assert_eq!(world.list_jobs().await.len(), 1);
    assert_eq!(world.list_runs().await.len(), 1);
    let statuses = world.standin.accepted_statuses(model_run_id).await;
    assert_eq!(
        status_names(&statuses),
        ["PREPARING_DATA", "TRAINING_MODEL", "COMPLETE"]
    );
}

/// Writes the request head and `body_part` over a plain TCP connection and
/// returns what the server sends back within 20 seconds, without ever
/// sending the rest of the body.
fn send_part_of_body(url: &str, head: &str, body_part: &[u8]) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    stream.write_all(head.as_bytes()).unwrap();
    // The server may respond and close before it reads all of the part.
    let _ = stream.write_all(body_part);
    let _ = stream.flush();

    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                answer.extend_from_slice(&buffer[..read]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(error) => {
                assert!(
                    !answer.is_empty(),
                    "no answer while the body was incomplete: {error}"
                );
                break;
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_rejected_before_read() {
    let world = World::new("oversized", json!({})).await;
    let url = world.trainhook.url.clone();
    let port = url.rsplit(':').next().unwrap().to_owned();

    // A declared length over the limit is rejected from the headers, after
    // 64 KiB of a 100 MiB body.
    let declared = format!(
        "POST /model_run HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nX-Hub-Signature: sha1=00\r\nContent-Length: {}\r\n\r\n",
        100 * BODY_LIMIT
    );
    let answer = tokio::task::spawn_blocking({
        let url = url.clone();
        move || send_part_of_body(&url, &declared, &vec![b' '; 64 * 1024])
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("larger than the limit of 1048576 bytes"),
        "{answer}"
    );

    // A chunked body of unknown length is rejected once it passes the limit,
    // while its last chunk is still unsent.
    let chunked = format!(
        "POST /model_run HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nX-Hub-Signature: sha1=00\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let chunk = vec![b' '; 64 * 1024];
    let mut chunks = Vec::new();
    for _ in 0..(BODY_LIMIT / chunk.len() + 2) {
        chunks.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunks.extend_from_slice(&chunk);
        chunks.extend_from_slice(b"\r\n");
    }
    let answer = tokio::task::spawn_blocking(move || send_part_of_body(&url, &chunked, &chunks))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("larger than the limit of 1048576 bytes"),
        "{answer}"
    );

    assert_eq!(world.list_runs().await.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn near_miss_signatures_rejected() {
    let world = World::new("near-miss", json!({})).await;
    let secret = world.trainhook.secret.clone();
    let body = model_run_body("never-created").into_bytes();
    let newline_secret = [secret.as_slice(), b"\n"].concat();
    let other_secret = b"not-the-webhook-secret";

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "secret with a trailing newline",
            vec![("X-Hub-Signature", sign_sha1(&newline_secret, &body))],
        ),
        (
            "SHA-256 with a trailing newline",
            vec![("X-Hub-Signature-256", sign_sha256(&newline_secret, &body))],
        ),
        (
            "SHA-1 of the body with a newline",
            vec![(
                "X-Hub-Signature",
                sign_sha1(&secret, &[&body[..], b"\n"].concat()),
            )],
        ),
        (
            "valid SHA-1 beside a wrong SHA-256",
            vec![
                ("X-Hub-Signature", sign_sha1(&secret, &body)),
                ("X-Hub-Signature-256", sign_sha256(other_secret, &body)),
            ],
        ),
        (
            "valid SHA-1 header sent twice",
            vec![
                ("X-Hub-Signature", sign_sha1(&secret, &body)),
                ("X-Hub-Signature", sign_sha1(&secret, &body)),
            ],
        ),
        (
            "SHA-256 digest in the SHA-1 header",
            vec![(
                "X-Hub-Signature",
                sign_sha256(&secret, &body).replace("sha256=", "sha1="),
            )],
        ),
    ];

    for (case, headers) in cases {
        let (code, answer) = post(&world, body.clone(), &headers).await;
        assert_eq!(code, 401, "{case}: {answer}");
        assert_eq!(answer["error"], "invalid_signature", "{case}: {answer}");
    }

    assert_eq!(world.list_runs().await.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sha256_header_alone_accepted() {
    let world = World::new("sha256", json!({})).await;
    let body = model_run_body("signed-with-sha256").into_bytes();
    let signature = sign_sha256(&world.trainhook.secret, &body);

    let (code, answer) = post(&world, body, &[("X-Hub-Signature-256", signature)]).await;

    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["created"], true, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_bodies_verify_over_raw_bytes() {
    let world = World::new("odd-bodies", json!({})).await;
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "whitespace",
            "\r\n\t{ \"modelType\"\t:\r\n\"bounding_box\" ,\n\n\"modelRunId\" :   \"spaced-out\" }\n\n",
            "spaced-out",
        ),
        (
            "key order",
            r#"{"organizationId":"org","modelId":"m","modelRunId":"keys-reversed","modelType":"bounding_box"}"#,
            "keys-reversed",
        ),
        (
            "unicode escapes",
            r#"{"modelType":"bounding_\u0062ox","modelRunId":"caf\u00e9-\u00fcber"}"#,
            "café-über",
        ),
        (
            "emoji",
            r#"{"modelType":"bounding_box","modelRunId":"rocket-🚀","modelId":"\ud83d\ude80 escaped"}"#,
            "rocket-🚀",
        ),
        (
            "escaped solidus and quote",
            r#"{"modelType":"bounding_box","modelRunId":"path\/with \"quotes\""}"#,
            "path/with \"quotes\"",
        ),
    ];

    for (case, body, model_run_id) in cases {
        let signature = world.trainhook.sign(body.as_bytes());
        let (code, answer) = post(
            &world,
            body.as_bytes().to_vec(),
            &[("X-Hub-Signature", signature)],
        )
        .await;

        assert_eq!(code, 200, "{case}: {answer}");
        assert_eq!(answer["created"], true, "{case}: {answer}");
        assert_eq!(answer["modelRunId"], model_run_id, "{case}: {answer}");
        let name = answer["name"].as_str().unwrap();
        let run = world.runs().await.get(name).await.unwrap();
        assert_eq!(run.spec.model_run_id, model_run_id, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reserialized_body_rejected() {
    let world = World::new("reserialized", json!({})).await;
    let original =
        r#"{ "modelRunId": "re-serialized", "modelType": "bounding_box", "modelId": "caf\u00e9" }"#;
    let signature = world.trainhook.sign(original.as_bytes());

    let parsed: Value = serde_json::from_str(original).unwrap();
    let compact = serde_json::to_vec(&parsed).unwrap();
    let pretty = serde_json::to_vec_pretty(&parsed).unwrap();
    for (case, body) in [("compact", compact), ("pretty", pretty)] {
        assert_ne!(body, original.as_bytes(), "{case}");
        let (code, answer) = post(&world, body, &[("X-Hub-Signature", signature.clone())]).await;
        assert_eq!(code, 401, "{case}: {answer}");
        assert_eq!(answer["error"], "invalid_signature", "{case}: {answer}");
    }
    assert_eq!(world.list_runs().await.len(), 0);

    let (code, answer) = post(
        &world,
        original.as_bytes().to_vec(),
        &[("X-Hub-Signature", signature)],
    )
    .await;
    assert_eq!(code, 200, "the original bytes still verify: {answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_body_times_out() {
    let world = World::new("stalled", json!({})).await;
    let url = world.trainhook.url.clone();
    let port = url.rsplit(':').next().unwrap().to_owned();
    let head = format!(
        "POST /model_run HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Hub-Signature: sha1=00\r\nContent-Length: 100\r\n\r\n"
    );

    let answer = tokio::task::spawn_blocking(move || send_part_of_body(&url, &head, b"{"))
        .await
        .unwrap();

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"body_timeout""#), "{answer}");
    assert!(answer.contains("not received within 10 s"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_or_path_gets_json() {
    let world = World::new("routes", json!({})).await;
    let client = reqwest::Client::new();
    let cases = [
        ("GET", "/model_run", 405, "method_not_allowed", Some("POST")),
        ("POST", "/models", 405, "method_not_allowed", Some("GET")),
        ("DELETE", "/healthz", 405, "method_not_allowed", Some("GET")),
        ("GET", "/model_runs", 404, "not_found", None),
        ("POST", "//model_run", 404, "not_found", None),
    ];

    for (method, path, expected_code, expected_error, allow) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{path}", world.trainhook.url);
        let response = client.request(method.clone(), url).send().await.unwrap();

        assert_eq!(response.status().as_u16(), expected_code, "{method} {path}");
        let allowed = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allowed.as_deref(), allow, "{method} {path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], expected_error, "{method} {path}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(path), "{method} {path}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_secret_stops_verification() {
    let world = World::new("removed-secret", json!({})).await;
    let readyz = format!("{}/readyz", world.trainhook.url);
    let body = model_run_body("after-removal");
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);

    std::fs::remove_file(&world.trainhook.secret_file).unwrap();
    let (code, answer) = world.trainhook.post_model_run(&body).await;
    assert_eq!(code, 503, "{answer}");
    assert_eq!(answer["error"], "secret_unavailable", "{answer}");
    let not_ready = reqwest::get(&readyz).await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let reason: Value = not_ready.json().await.unwrap();
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("webhook secret"),
        "{reason}"
    );
    assert_eq!(world.list_runs().await.len(), 0);

    std::fs::write(&world.trainhook.secret_file, &world.trainhook.secret).unwrap();
    let (code, answer) = world.trainhook.post_model_run(&body).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);
}
