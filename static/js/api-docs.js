// The API reference page: Swagger UI renders the OpenAPI document named on #api-reference.
// A file of its own, because the page's CSP allows no inline script.

const container = document.getElementById("api-reference");
if (container && window.SwaggerUIBundle) {
  window.SwaggerUIBundle({
    url: container.dataset.specUrl,
    domNode: container,
    deepLinking: true,
    // No request to validator.swagger.io: the document is linted in `make test` instead.
    validatorUrl: "none",
    defaultModelsExpandDepth: 0,
  });
}
