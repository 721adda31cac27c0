//! The stdio loop over an in-memory stream: pipelining, garbage, huge lines, end of input.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::{MODERN_META, test_server};

async fn start() -> (
    tokio::io::WriteHalf<tokio::io::DuplexStream>,
    tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (client, server_side) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server_side);
    let task = tokio::spawn(switchboard_server::serve(
        test_server(),
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client);
    (client_write, BufReader::new(client_read).lines(), task)
}

async fn next(
    lines: &mut tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let (mut input, mut output, _task) = start().await;
    let mut batch = String::new();
    for i in 0..200 {
        batch.push_str(&format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"n{i}"}},{MODERN_META}}}}}"#));
        batch.push('\n');
    }
    input.write_all(batch.as_bytes()).await.unwrap();
    for i in 0..200 {
        let answer = next(&mut output).await;
        assert_eq!(answer["id"], i);
        assert_eq!(answer["result"]["content"][0]["text"], format!("n{i}"));
    }
}

#[tokio::test]
async fn garbage_and_crlf_do_not_stop_the_loop() {
    let (mut input, mut output, _task) = start().await;
    input
        .write_all(b"garbage\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\"}\r\n")
        .await
        .unwrap();
    assert_eq!(next(&mut output).await["error"]["code"], -32700);
    assert_eq!(next(&mut output).await["id"], 0);
}

#[tokio::test]
async fn a_line_too_long_is_skipped_with_an_error() {
    let (mut input, mut output, _task) = start().await;
    let chunk = vec![b'x'; 1 << 20];
    let writer = tokio::spawn(async move {
        for _ in 0..17 {
            input.write_all(&chunk).await.unwrap();
        }
        input
            .write_all(b"\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n")
            .await
            .unwrap();
        input
    });
    let error = next(&mut output).await;
    assert_eq!(error["error"]["code"], -32600);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );
    assert_eq!(next(&mut output).await["id"], 1);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn end_of_input_lets_running_calls_finish() {
    let (mut input, mut output, task) = start().await;
    let line = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":\"late\",\"method\":\"tools/call\",\"params\":{{\"name\":\"slow\",\"arguments\":{{\"ms\":100}},{MODERN_META}}}}}\n"
    );
    input.write_all(line.as_bytes()).await.unwrap();
    input.shutdown().await.unwrap();
    drop(input);
    let answer = next(&mut output).await;
    assert_eq!(answer["id"], "late");
    assert_eq!(answer["result"]["content"][0]["text"], "slept");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn notes_from_a_handler_that_finished_at_once_come_before_its_answer() {
    use switchboard_server::{Server, Tool, ToolOutput};
    let server = Server::builder("quick-progress", "1")
        .tool(
            Tool::builder("quick", "Reports progress without waiting.").handler(
                |_: crate::Empty, cx| async move {
                    cx.progress(1.0, Some(1.0), None).await;
                    Ok(ToolOutput::text("done"))
                },
            ),
        )
        .build()
        .unwrap();
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(server, server_read, server_write));
    let (client_read, mut input) = tokio::io::split(client);
    let mut output = BufReader::new(client_read).lines();
    let line = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"quick","_meta":{"progressToken":7,"#,
        r#""io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        "\n"
    );
    input.write_all(line.as_bytes()).await.unwrap();
    assert_eq!(next(&mut output).await["method"], "notifications/progress");
    assert_eq!(next(&mut output).await["id"], 1);
}
