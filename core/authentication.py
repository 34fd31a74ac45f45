"""``Authorization: Bearer <api key>``: the key is hashed and looked up, never stored."""
from rest_framework import authentication, exceptions

from core import selectors


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        client = selectors.api_client_by_key(key=key.strip())
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return (client, None)

    def authenticate_header(self, request) -> str:
        return self.keyword
