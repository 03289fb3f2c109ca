// The console's only script, and an optional one: every form works
// without it. It shows an import's upload progress (a large file takes a
// while) and puts the answer in place of the page.
(function () {
  "use strict";
  function enhance() {
    var form = document.getElementById("import-form");
    var bar = document.getElementById("upload-progress");
    if (!form || !bar || !window.XMLHttpRequest || !window.FormData) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.responseType = "document";
      bar.hidden = false;
      bar.removeAttribute("value");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) {
          bar.max = e.total;
          bar.value = e.loaded;
          bar.textContent = Math.round((100 * e.loaded) / e.total) + "%";
        }
      };
      xhr.onload = function () {
        var page = xhr.response;
        if (!page || !page.body) {
          form.submit();
          return;
        }
        document.title = page.title;
        document.body.replaceWith(document.adoptNode(page.body));
        enhance();
      };
      xhr.onerror = function () {
        form.submit();
      };
      xhr.send(new FormData(form));
    });
  }
  enhance();
})();
