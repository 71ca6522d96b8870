"""Programs that run inside the sandbox. They import only the standard library, this folder and
(for the image worker) Pillow: the sandbox sees this folder alone of the project."""
