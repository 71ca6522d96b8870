// Progress while uploading, and size checks before sending. The form works without this file.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var progress = document.getElementById("progress");
  var bar = progress.querySelector("progress");
  var label = progress.querySelector("span");
  var problem = document.getElementById("client-problem");

  function show(message) {
    problem.textContent = message;
    problem.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    var files = form.querySelector("input[type=file]").files;
    var total = 0;
    for (var i = 0; i < files.length; i++) total += files[i].size;
    problem.hidden = true;
    if (files.length > Number(form.dataset.maxFiles)) { event.preventDefault(); show(form.dataset.tooMany); return; }
    if (total > Number(form.dataset.maxBytes)) { event.preventDefault(); show(form.dataset.tooLarge); return; }
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.floor((100 * e.loaded) / e.total);
      bar.value = percent;
      label.textContent = percent + "%";
    });
    xhr.upload.addEventListener("load", function () { bar.removeAttribute("value"); label.textContent = "…"; });
    xhr.addEventListener("load", function () {
      // The server answers with a whole page (results or a problem): show it as the next page.
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      progress.hidden = true;
      form.querySelector("button").disabled = false;
      show(form.dataset.failed);
    });
    form.querySelector("button").disabled = true;
    progress.hidden = false;
    xhr.send(new FormData(form));
  });
})();
