"""Build the apify-sqlite wheel by hand (a wheel is a zip with METADATA, WHEEL and RECORD):
the thin loader apify_sqlite/__init__.py beside the compiled extension, tagged for this
machine. Standard library only; reproducible (fixed timestamps, sorted entries).

    python3 mkwheel.py --version 0.1.0 --lib build/apify.so --readme README.md --out dist

Prints the path of the wheel. `make dist` runs it.
"""

import argparse
import base64
import hashlib
import os
import sys
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "apify-sqlite"
MODULE = "apify_sqlite"
DATE = (1980, 1, 1, 0, 0, 0)
SUMMARY = "SQLite extension that creates Apify webhooks from SQL"


def platform_tag():
    """This machine's wheel platform tag: linux_x86_64, macosx_11_0_arm64, ..."""
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def metadata(version, readme):
    head = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\nSummary: {SUMMARY}\n"
            "Keywords: sqlite,sqlite-extension,apify,webhooks\n"
            "Requires-Python: >=3.8\nDescription-Content-Type: text/markdown\n\n")
    return (head + readme).encode("utf-8")


def build(version, lib, readme_path, out):
    suffix = os.path.splitext(lib)[1]            # .so, .dylib, .dll
    tag = f"py3-none-{platform_tag()}"
    dist_info = f"{MODULE}-{version}.dist-info"
    with open(os.path.join(HERE, MODULE, "__init__.py"), encoding="utf-8") as f:
        init = f.read().replace("@VERSION@", version).encode("utf-8")
    with open(lib, "rb") as f:
        lib_bytes = f.read()
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    files = [
        (f"{MODULE}/__init__.py", init, 0o644),
        (f"{MODULE}/apify{suffix}", lib_bytes, 0o755),
        (f"{dist_info}/METADATA", metadata(version, readme), 0o644),
        (f"{dist_info}/WHEEL", (f"Wheel-Version: 1.0\nGenerator: apify-sqlite mkwheel.py\n"
                                f"Root-Is-Purelib: false\nTag: {tag}\n").encode("ascii"), 0o644),
        (f"{dist_info}/top_level.txt", f"{MODULE}\n".encode("ascii"), 0o644),
    ]
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data, _ in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode("utf-8"), 0o644))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{MODULE}-{version}-{tag}.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, DATE)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(info, data)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--lib", required=True, help="the compiled extension")
    parser.add_argument("--readme", required=True)
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args()
    print(build(args.version, args.lib, args.readme, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
