"""The job system: build jobs from events, pick servers, dispatch, follow, finish, store, search."""
