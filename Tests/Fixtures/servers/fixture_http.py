"""What the fixture servers share: answering a request with a whole body."""


def send_whole(handler, status, body=b"", headers=()):
    """Status, headers and Content-Length, then the body (none for HEAD)."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
