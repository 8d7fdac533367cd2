"""The guards of twofactor's views (and of any project view that needs a recent proof).

`sudo_view` is the whole stack, in the order that makes sense: a logged-in user
first, then the protections every view that handles passwords or codes gets,
then the allowed methods, then "is 2FA in the state this action needs?" (before
asking for a password that would be wasted), and last "confirm it's you".
"""

from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from twofactor import services
from twofactor.forms import SudoForm
from twofactor.http import AuthenticatedHttpRequest
from twofactor.responses import done, render_page

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

View = TypeVar("View", bound=Callable[..., HttpResponse])

# The action's fields, carried through the "confirm it's you" question as hidden inputs.
RESUME_PREFIX = "resume-"


# Posted fields that error reports must never show (the answer to "confirm it's you").
SECRET_FIELDS = ("password", "code")


def auth_view(view: View, *, secret_fields: Sequence[str] = ()) -> View:
    """What every view that handles passwords or codes gets: the posted secrets (and
    `secret_fields`, the view's own) are starred out of error reports, CSRF is
    checked, and no cache keeps the page."""
    view = sensitive_post_parameters(*SECRET_FIELDS, *secret_fields)(view)
    view = csrf_protect(view)
    return never_cache(view)


# Where "Cancel" on the question leads, given the request (default TWOFACTOR_DONE_URL).
CancelURL = Callable[[HttpRequest], str]


def sudo_required(
    *, title: "StrOrPromise", cancel_url: CancelURL | None = None
) -> Callable[[View], View]:
    """Ask for the password (and a code with 2FA) unless proven in the last 10 minutes.

    The question is asked at the action's own URL, so the dialog (or page) the
    user opened simply continues once they have answered it. `title` heads the question:
    a gettext_lazy string, so it is said in the language of each request. It goes behind
    login_required (sudo_view puts it there): the request has a user.
    `cancel_url`: for an action opened from another page than TWOFACTOR_DONE_URL,
    so that "Cancel" goes back there (without JavaScript, where it is a link).
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if services.has_recent_proof(request=request):
                return view(request, *args, **kwargs)
            needs_code = services.is_two_factor_enabled(user=request.user)
            is_answer = request.method == "POST" and "sudo" in request.POST
            # The action's own form, posted after the 10 minutes ran out (a slow setup):
            # asked again, it is carried through the question so nothing is typed twice.
            pending = _resumed_fields(request.POST) if is_answer else _action_fields(request)
            form = SudoForm(
                request.POST if is_answer else None, request=request, needs_code=needs_code
            )
            if is_answer and form.is_valid():
                services.start_sudo(request=request)
                if pending:
                    # Continue the action that was interrupted. django-stubs types POST as
                    # _ImmutableQueryDict (a stubs-only class for what Django parses); one
                    # built in code is typed QueryDict, and no public API turns one into the other.
                    request.POST = pending  # type: ignore[assignment]
                    return view(request, *args, **kwargs)
                return redirect(request.get_full_path())  # htmx follows it inside the dialog
            context = {
                "form": form,
                "title": title,
                "pending": pending,
                "expired": services.had_proof(request=request),
                # A key instead of the code, where the user has one (a new challenge).
                "key_options": (
                    services.begin_sudo_key(user=request.user, session=request.session)
                    if needs_code
                    else ""
                ),
            }
            if cancel_url is not None:
                context["done_url"] = cancel_url(request)
            return render_page(request, "twofactor/sudo.html", context)

        # wraps() is typed as returning its own _Wrapped[...], which mypy cannot equate
        # with the TypeVar `View`; the wrapper takes `view`'s arguments and returns its answer.
        return wrapper  # type: ignore[return-value]

    return decorator


def two_factor_state_required(*, active: bool) -> Callable[[View], View]:
    """The action only makes sense with 2FA on (active=True) or off (False); otherwise
    back to TWOFACTOR_DONE_URL, before any password is asked for."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if services.is_two_factor_enabled(user=request.user) == active:
                return view(request, *args, **kwargs)
            # Said, not only redirected: a page left open in another tab may offer an
            # action that no longer applies.
            if active:
                messages.info(request, gettext("Two-factor authentication is off."))
            else:
                messages.info(request, gettext("Two-factor authentication is already on."))
            return done(request)

        return wrapper  # type: ignore[return-value]  # wraps(): as in sudo_required

    return decorator


def sudo_view(
    *,
    title: "StrOrPromise",
    two_factor_active: bool | None = None,
    methods: Sequence[str] = ("GET", "POST"),
    secret_fields: Sequence[str] = (),
    cancel_url: CancelURL | None = None,
    refusal: Callable[[HttpRequest], HttpResponse | None] | None = None,
) -> Callable[[View], View]:
    """login_required, auth_view, the methods, the 2FA state (if given), `refusal` (if
    given: an answer for an action the user may not take, before any password is
    asked for; None to go on), sudo_required."""

    def decorator(view: View) -> View:
        guarded = sudo_required(title=title, cancel_url=cancel_url)(view)
        if refusal is not None:
            guarded = _refused_by(refusal)(guarded)
        if two_factor_active is not None:
            guarded = two_factor_state_required(active=two_factor_active)(guarded)
        guarded = require_http_methods(list(methods))(guarded)
        return login_required(auth_view(guarded, secret_fields=secret_fields))

    return decorator


def _refused_by(refusal: Callable[[HttpRequest], HttpResponse | None]) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            answer = refusal(request)
            return answer if answer is not None else view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]  # wraps(): as in sudo_required

    return decorator


def _action_fields(request: HttpRequest) -> QueryDict:
    """The fields of an action's form that reached the question instead of the action."""
    fields = QueryDict(mutable=True)
    if request.method == "POST":
        for name, values in request.POST.lists():
            # Passwords are never written back into a page: those are typed again.
            if name != "csrfmiddlewaretoken" and "password" not in name:
                fields.setlist(name, values)
    return fields


def _resumed_fields(post: QueryDict) -> QueryDict:
    fields = QueryDict(mutable=True)
    for name, values in post.lists():
        if name.startswith(RESUME_PREFIX):
            fields.setlist(name.removeprefix(RESUME_PREFIX), values)
    return fields
