"""A warm LibreOffice inside the sandbox: Office/ODF/RTF bytes in, PDF bytes out (frames on stdin/stdout).

Run by the system's /usr/bin/python3 (its ``uno`` module belongs to the installed LibreOffice), never
by the project's virtualenv. Starts ``soffice`` headless in the same sandbox, talking over a pipe
(no socket: the sandbox has no network anyway), with a fresh profile in the private /tmp. Each file
is written to /tmp, loaded with macros never executed and links never updated, exported to PDF and
deleted. Any failure ends this worker (the engine starts a fresh one): a file that confused
LibreOffice must not meet the next file in the same process.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol

#: the answer when LibreOffice died before the file was given to it: the file is not to blame (office.py)
RENDERER_GONE = "renderer-gone"
SOFFICE = "/usr/lib/libreoffice/program/soffice"
PIPE = "lgwan_sanitizer"
WORK = "/tmp/work"
MAX_PAYLOAD = 512 * 1024 * 1024
#: the PDF export filter of each kind of document LibreOffice opened
EXPORT_FILTERS = (("com.sun.star.text.GenericTextDocument", "writer_pdf_Export"),
                  ("com.sun.star.sheet.SpreadsheetDocument", "calc_pdf_Export"),
                  ("com.sun.star.presentation.PresentationDocument", "impress_pdf_Export"),
                  ("com.sun.star.drawing.DrawingDocument", "draw_pdf_Export"))


def start_office():
    process = subprocess.Popen(
        [SOFFICE, "--headless", "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck",
         "--nofirststartwizard", f"--accept=pipe,name={PIPE};urp;StarOffice.ComponentContext",
         "-env:UserInstallation=file:///tmp/profile"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import uno
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 90
    while True:
        try:
            context = resolver.resolve(f"uno:pipe,name={PIPE};urp;StarOffice.ComponentContext")
            break
        except Exception as e:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("LibreOffice did not start") from e
            time.sleep(0.1)
    desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
    return process, desktop


def properties(**values):
    from com.sun.star.beans import PropertyValue
    return tuple(PropertyValue(Name=name, Value=value) for name, value in values.items())


class Converter:
    def __init__(self):
        self.process, self.desktop = start_office()

    def alive(self):
        try:
            self.desktop.getFrames()  # a round trip to soffice.bin (oosplash may outlive it)
            return self.process.poll() is None
        except Exception:
            return False

    def convert(self, header, payload):
        if not self.alive():
            return {"error": RENDERER_GONE, "worker_ok": False}, b""
        import uno
        os.makedirs(WORK, exist_ok=True)
        source = os.path.join(WORK, "input." + "".join(c for c in header.get("ext", "bin") if c.isalnum())[:5])
        target = os.path.join(WORK, "output.pdf")
        with open(source, "wb") as f:
            f.write(payload)
        try:
            # MacroExecutionMode 0 = NEVER_EXECUTE, UpdateDocMode 0 = NO_UPDATE (no linked content fetched)
            document = self.desktop.loadComponentFromURL(
                uno.systemPathToFileUrl(source), "_blank", 0,
                properties(Hidden=True, ReadOnly=True, MacroExecutionMode=0, UpdateDocMode=0))
            if document is None:
                return {"error": "LibreOffice could not open the file", "worker_ok": False}, b""
            try:
                export = next((f for service, f in EXPORT_FILTERS if document.supportsService(service)), None)
                if export is None:
                    return {"error": "no PDF export for this document", "worker_ok": False}, b""
                pages = int(header.get("max_pages", 0))
                filter_data = uno.Any("[]com.sun.star.beans.PropertyValue",
                                      properties(PageRange=f"1-{pages}") if pages else ())
                document.storeToURL(uno.systemPathToFileUrl(target),
                                    properties(FilterName=export, FilterData=filter_data))
            finally:
                document.close(True)
            with open(target, "rb") as converted:
                return {"ok": True}, converted.read()
        finally:
            shutil.rmtree(WORK, ignore_errors=True)


def main():
    converter = Converter()

    def handle(header, payload):
        try:
            return converter.convert(header, payload)
        except Exception as e:  # UNO errors are not ValueErrors: say so, and let the engine replace us
            return {"error": f"{type(e).__name__}: {e}"[:500], "worker_ok": False}, b""

    try:
        protocol.serve(handle, MAX_PAYLOAD)
    finally:
        converter.process.kill()


if __name__ == "__main__":
    main()
