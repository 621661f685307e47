// The Rust frontend of the polyglot scenario, std only: a thread per
// connection, and the backend call made from that thread, so Loupe's thread
// rule (not a goroutine, not a header) ties the call to the request.
//   frontend PORT BACKEND_PORT [LISTEN_ADDR [BACKEND_ADDR]]
// (both addresses 127.0.0.1 unless given: in a container it listens on
// 0.0.0.0 and calls the backend container's address).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().expect("port");
    let backend: u16 = args[2].parse().expect("backend port");
    let listen: &str = args.get(3).map(|s| s.as_str()).unwrap_or("127.0.0.1");
    let backend_addr: String = args.get(4).cloned().unwrap_or_else(|| "127.0.0.1".to_string());
    let listener = TcpListener::bind((listen, port)).expect("bind");
    println!("ready");
    for stream in listener.incoming().flatten() {
        let backend_addr = backend_addr.clone();
        thread::spawn(move || serve(stream, &backend_addr, backend));
    }
}

fn serve(mut stream: TcpStream, backend_addr: &str, backend: u16) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let (status, body) = match path.strip_prefix("/factorial/").and_then(|n| n.parse::<u32>().ok()) {
            Some(n) => ("200 OK", compute(backend_addr, backend, n)),
            None => ("404 Not Found", "not here\n".to_string()),
        };
        let response = format!("HTTP/1.1 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}", status, body.len(), body);
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn compute(addr: &str, port: u16, n: u32) -> String {
    let mut s = TcpStream::connect((addr, port)).expect("connect backend");
    write!(s, "GET /compute?n={} HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n", n).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}
