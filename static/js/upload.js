// The upload page: a file over the upload limit is refused before it is sent (the
// server refuses it too, with a 413, but only after the browser has sent it).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-max-bytes]");
  if (!form) return;
  const limit = Number(form.dataset.maxBytes);
  const input = form.querySelector("input[type=file]");
  const box = document.getElementById("upload-error");
  const tooLarge = () => input.files.length && input.files[0].size > limit;
  const show = () => {
    if (!box) return;
    box.hidden = !tooLarge();
    box.innerHTML = "";
    if (tooLarge()) {
      const item = document.createElement("li");
      const mb = (limit / 1048576).toLocaleString(undefined, { maximumFractionDigits: 1 });
      item.textContent =
        `The file is larger than the upload limit of ${mb} MB. Compress it (.gz is read ` +
        "as it is) or import it on the server with manage.py import_corpus.";
      box.append(item);
    }
  };
  input.addEventListener("change", show);
  form.addEventListener("submit", (event) => {
    if (tooLarge()) {
      event.preventDefault();
      show();
    }
  });
});
