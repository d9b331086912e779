"""The demo app's routes in Flask, the baseline the Rocket demo-app is measured against (bench/ only)."""

import os
import socket

from flask import Flask, jsonify

app = Flask(__name__)
VERSION = os.environ.get("APP_VERSION", "0.1.0")
COMMIT = os.environ.get("GIT_SHA", "unknown")
HOST = socket.gethostname()


@app.get("/")
def index():
    return (
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>demo-app {VERSION}</title></head>\n"
        f"<body><h1>demo-app</h1>\n<dl><dt>version</dt><dd>{VERSION}</dd><dt>commit</dt><dd>{COMMIT}</dd>"
        f"<dt>host</dt><dd>{HOST}</dd></dl></body></html>\n"
    )


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/version")
def version():
    return jsonify(version=VERSION, commit=COMMIT, host=HOST)
