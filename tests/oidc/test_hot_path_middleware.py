"""HubCSPMiddleware (the settings' policy built once) sets exactly the headers django-csp sets."""

import pytest
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory, override_settings

from identityhub.middleware import HubCSPMiddleware


def _responses():
    plain = JsonResponse({"access_token": "x"})
    page = HttpResponse("<p>consent</p>")
    page._csp_update = {"form-action": ["http://127.0.0.1:9"]}  # allow_form_redirect
    exempt = HttpResponse("x")
    exempt._csp_exempt = True
    preset = HttpResponse("x")
    preset["Content-Security-Policy"] = "default-src 'none'"
    return [plain, page, exempt, preset, HttpResponse(status=302), HttpResponse(status=404)]


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("nonce", [False, True])
def test_the_same_headers_as_django_csp(index, nonce):
    results = []
    for middleware_class in (CSPMiddleware, HubCSPMiddleware):
        middleware = middleware_class(lambda request: None)
        request = RequestFactory().get("/token/")
        middleware.process_request(request)
        if nonce:
            str(request.csp_nonce)
            request._csp_nonce = "fixed-nonce"
        response = middleware.process_response(request, _responses()[index])
        results.append({k: v for k, v in response.items() if "Security-Policy" in k})
        if not nonce:  # django-csp's guard: a nonce asked for after the header is written is an error
            with pytest.raises(CSPNonceError):
                str(request.csp_nonce)
    assert results[0] == results[1]
    assert index in (2, 3) or "Content-Security-Policy" in results[1]


def test_a_changed_policy_setting_is_picked_up(settings):
    middleware = HubCSPMiddleware(lambda request: None)
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        request = RequestFactory().get("/token/")
        middleware.process_request(request)
        response = middleware.process_response(request, JsonResponse({}))
        assert response["Content-Security-Policy"] == "default-src 'none'"
    request = RequestFactory().get("/token/")
    middleware.process_request(request)
    assert "frame-ancestors 'none'" in middleware.process_response(request, JsonResponse({}))["Content-Security-Policy"]
