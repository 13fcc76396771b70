# buildkit-lib's PyInstaller runner for incremental packaging (mounted mode).
#
# Written by the library into the package step's state folder and run in the runtime
# image instead of the `pyinstaller` command:
#
#   python3 incremental.py --state DIR [--incremental [--reuse-analysis FILE]...] -- <args>
#
# It changes nothing in what PyInstaller produces; it only avoids repeating work whose
# result is known:
# - The one-file archive (PKG/CArchive): PyInstaller compresses every collected library
#   with zlib level 9 on every build (most of a rebuild's time for a Qt app). Here each
#   compressed entry is kept in DIR/archive-cache, named by the sha256 of the
#   uncompressed bytes, the compression level, zlib's version and the feeding size, and
#   written again byte for byte when the same bytes come again. An entry read back is
#   decompressed and its sha256 checked before it is used. Entries this run did not use
#   are removed afterwards. The entries to compress are compressed side by side on every
#   core before PyInstaller writes the archive in order.
# - The analysis: with --reuse-analysis (the library has proven, by content hash and by
#   the modules' parsed imports, that only those application modules changed and that
#   their imports did not), PyInstaller's own up-to-date check of the analysis ignores
#   those files' newer modification times. Every other check of PyInstaller stays as it
#   is. With --incremental the PYZ, PKG and EXE targets are always rebuilt (their records
#   are removed), so changed modules are compiled again from their source whatever their
#   modification times say.
#
# - The PYZ is assembled in a fresh interpreter on both paths (see pyz_assemble below), so
#   an incremental archive is byte for byte a clean one.
#
# On success it writes DIR/result.json: what the analysis did, the modules of the graph
# (for the next run's proof) and the archive cache's figures.
import argparse
import concurrent.futures
import glob
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import zlib

FEED = 16 * 1024  # CArchiveWriter._write_file reads and compresses in 16 KiB slices


def main():
    parser = argparse.ArgumentParser(prog="incremental.py")
    parser.add_argument("--state", required=True)
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--reuse-analysis", action="append", default=[])
    parser.add_argument("pyinstaller_args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    args = opts.pyinstaller_args
    if args and args[0] == "--":
        args = args[1:]

    import PyInstaller
    import PyInstaller.__main__
    from PyInstaller.archive import writers
    from PyInstaller.building import api, build_main
    from PyInstaller.utils import misc

    state = opts.state
    cache_dir = os.path.join(state, "archive-cache")
    os.makedirs(cache_dir, exist_ok=True)
    stats = {"reused": 0, "compressed": 0, "reused_bytes": 0, "compressed_bytes": 0}
    used = set()

    writer = writers.CArchiveWriter
    original_write_file = getattr(writer, "_write_file", None)
    level = getattr(writer, "_COMPRESSION_LEVEL", None)
    cache_on = original_write_file is not None and isinstance(level, int)

    def cached(path, digest):
        """The cached compressed bytes of the entry with `digest`, checked; or None."""
        try:
            with open(path, "rb") as f:
                blob = f.read()
            if hashlib.sha256(zlib.decompress(blob)).hexdigest() == digest:
                return blob
        except (OSError, zlib.error):
            pass
        return None

    def compressed(src_name):
        """(key, compressed bytes, length, whether it was compressed now) of a file:
        from the cache when its bytes were compressed before, else compressed the way
        PyInstaller does (one compressor fed 16 KiB at a time) and put in the cache."""
        with open(src_name, "rb") as f:
            data = f.read()
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest}-z{level}-{zlib.ZLIB_RUNTIME_VERSION}-f{FEED}"
        path = os.path.join(cache_dir, key)
        blob = cached(path, digest)
        if blob is not None:
            return key, blob, len(data), False
        compressor = zlib.compressobj(level)
        parts = [compressor.compress(data[i:i + FEED]) for i in range(0, len(data), FEED)]
        parts.append(compressor.flush())
        blob = b"".join(parts)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
        return key, blob, len(data), True

    def write_file(self, out_fp, src_name, dest_name, typecode, compress=False):
        if not compress:
            return original_write_file(self, out_fp, src_name, dest_name, typecode, compress)
        ready = prepared.pop(src_name, None)
        key, blob, length, fresh = ready if ready is not None else compressed(src_name)
        if fresh:
            stats["compressed"] += 1
            stats["compressed_bytes"] += length
        else:
            stats["reused"] += 1
            stats["reused_bytes"] += length
        used.add(key)
        offset = out_fp.tell()
        out_fp.write(blob)
        return (offset, len(blob), length, 1, typecode, dest_name)

    # The archive is written in order, one entry after another; the files it compresses
    # are read (from the cache, checked) or compressed first, side by side on every core
    # (zlib and hashlib let go of the GIL), and the writer takes them from `prepared`.
    # The bytes are the same either way.
    prepared = {}
    original_writer_init = writer.__init__
    blob_types = {"o", "d", "s", "s1", "s2", "m", "M", "n"}

    def writer_init(self, filename, entries, *a, **kw):
        entries = list(entries)
        files = sorted({
            src for _dest, src, compress, typecode in entries
            if compress and typecode not in blob_types and src and os.path.isfile(src)
        })
        if len(files) > 1:
            with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                prepared.update(zip(files, pool.map(compressed, files)))
        try:
            return original_writer_init(self, filename, entries, *a, **kw)
        finally:
            prepared.clear()

    if cache_on:
        writer._write_file = write_file
        writer.__init__ = writer_init

    # The analysis' up-to-date check, with the proven modules' times ignored.
    proven = {os.path.realpath(p) for p in opts.reuse_analysis}
    checking = [False]
    original_mtime = misc.mtime

    def mtime(path):
        if checking[0] and os.path.realpath(path) in proven:
            return 0
        return original_mtime(path)

    analyses = []
    analysis = build_main.Analysis
    original_check = analysis._check_guts
    original_assemble = analysis.assemble
    original_init = analysis.__init__
    assembled = [False]

    def check_guts(self, data, last_build):
        # PyInstaller 6 appends "__main__" to a non-empty `excludes` list in place while it
        # analyses (`excludes += ("__main__",)` in initialize_modgraph), so the saved list
        # never equals the spec's and the analysis would never be reused. The analysis
        # excludes "__main__" either way: compare without it.
        saved = data.get("excludes")
        if (
            isinstance(saved, list)
            and "__main__" not in self.excludes
            and saved == list(self.excludes) + ["__main__"]
        ):
            data = dict(data, excludes=list(self.excludes))
        checking[0] = True
        try:
            return original_check(self, data, last_build)
        finally:
            checking[0] = False

    def assemble(self):
        assembled[0] = True
        return original_assemble(self)

    def init(self, *a, **kw):
        analyses.append(self)
        return original_init(self, *a, **kw)

    # The PYZ is always assembled in a fresh interpreter (assemble_pyz below), on both
    # paths: a module's marshalled bytes depend on reference counts (marshal's FLAG_REF),
    # including those of strings the whole process shares, so code compiled in a process
    # that also ran an analysis gives other bytes than the same code compiled in one
    # that did not, and an incremental archive would differ from a clean one although
    # its code is the same. In a fresh interpreter doing only this, they are equal.
    pyz = api.PYZ

    def pyz_assemble(self):
        from PyInstaller.config import CONF

        job = os.path.join(state, "pyz-job.json")
        with open(job, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "name": self.name,
                    "toc": [list(entry) for entry in self.toc],
                    "sys_path": sys.path,
                    "pathex": list(CONF.get("pathex", [])),
                },
                f,
            )
        subprocess.run([sys.executable, os.path.abspath(__file__), "--assemble-pyz", job], check=True)
        os.remove(job)

    pyz.assemble = pyz_assemble

    misc.mtime = mtime
    build_main.mtime = mtime
    analysis._check_guts = check_guts
    analysis.assemble = assemble
    analysis.__init__ = init

    workpath = None
    for i, arg in enumerate(args):
        if arg == "--workpath" and i + 1 < len(args):
            workpath = args[i + 1]
    if opts.incremental and workpath:
        # Every target after the analysis is built again.
        for kind in ("PYZ", "PKG", "EXE", "COLLECT"):
            for record in glob.glob(os.path.join(glob.escape(workpath), "**", f"{kind}-*.toc"), recursive=True):
                os.remove(record)

    started = time.monotonic()
    PyInstaller.__main__.run(args)
    seconds = time.monotonic() - started

    if cache_on:
        for name in os.listdir(cache_dir):
            if name not in used:
                os.remove(os.path.join(cache_dir, name))

    modules = set()
    for a in analyses:
        for _name, src, typecode in list(a.pure) + list(a.scripts):
            if src and typecode in ("PYMODULE", "PYMODULE-1", "PYMODULE-2", "PYSOURCE"):
                modules.add(os.path.realpath(src))
    result = {
        "pyinstaller": PyInstaller.__version__,
        "python": sys.version.split()[0],
        "analysis": "rebuilt" if assembled[0] else "reused",
        "modules": sorted(modules),
        "archive_cache": dict(stats, on=cache_on),
        "seconds": round(seconds, 2),
    }
    tmp = os.path.join(state, "result.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, os.path.join(state, "result.json"))
    print(
        f"buildkit-lib: analysis {result['analysis']}; archive entries "
        f"{stats['reused']} reused, {stats['compressed']} compressed "
        f"({stats['compressed_bytes'] / 1e6:.1f} MB)"
        if cache_on
        else f"buildkit-lib: analysis {result['analysis']}; archive cache off "
        f"(PyInstaller {PyInstaller.__version__} has no CArchiveWriter._write_file)",
        file=sys.stderr,
    )


def assemble_pyz(job_path):
    """What PyInstaller's PYZ.assemble does, in this fresh interpreter: every module
    compiled from its source (get_code_object; one that does not compile is left out, as
    PyInstaller does), paths stripped, written by ZlibArchiveWriter."""
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    from PyInstaller.config import CONF

    CONF["pathex"] = job["pathex"]
    from PyInstaller.archive.writers import ZlibArchiveWriter
    from PyInstaller.building.utils import get_code_object, strip_paths_in_code

    sys.path[:] = job["sys_path"]
    optimize = {"PYMODULE": 0, "PYMODULE-1": 1, "PYMODULE-2": 2}
    toc = []
    code = {}
    for name, src, typecode in job["toc"]:
        try:
            code[name] = get_code_object(name, src, optimize=optimize[typecode])
        except SyntaxError:
            continue
        toc.append((name, src, typecode))
    code = {name: strip_paths_in_code(co) for name, co in code.items()}
    ZlibArchiveWriter(job["name"], toc, code_dict=code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--assemble-pyz"]:
        assemble_pyz(sys.argv[2])
    else:
        main()
