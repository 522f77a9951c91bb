"""The request bodies and answers of the prediction API as OpenAPI documents (FastAPI reads the raw
body itself, so these describe it for /docs and for clients generated from the schema)."""

EXAMPLE = {"dataframe_split": {"columns": ["x0", "x1"], "data": [[0.5, "a"]]}}
BODY_SCHEMA = {
    "type": "object",
    "properties": {
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}},
            },
            "required": ["columns", "data"],
        },
        "dataframe_records": {"type": "array", "items": {"type": "object"}},
        "inputs": {"oneOf": [{"type": "object"}, {"type": "array"}]},
        "instances": {"oneOf": [{"type": "object"}, {"type": "array"}]},
        "params": {"type": "object"},
    },
    "example": EXAMPLE,
}
FEEDBACK_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "feedback": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "prediction_id": {"type": "string"},
                                    "row": {"type": "object"},
                                    "label": {},
                                },
                                "required": ["label"],
                            },
                        }
                    },
                    "required": ["feedback"],
                    "example": {"feedback": [{"prediction_id": "3f2a9c1d0b7e-0", "label": 1}]},
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "`joined`: labels matched to predictions; `unknown`: ids not (or no longer) held."
        },
        "400": {"description": "Malformed body."},
        "422": {"description": "Items without a label, or without exactly one of prediction_id and row."},
        "503": {"description": "Monitoring is off or the monitor is not reachable."},
    },
}
PREDICT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BODY_SCHEMA},
            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "200": {
            "description": "`predictions`: one record per row, in request order (`prediction_id`, "
            "`prediction`, and `proba_<class>` for classifiers); `model`: name and version."
        },
        "400": {"description": "Malformed body."},
        "401": {"description": "Missing or wrong API key."},
        "413": {"description": "Too many rows."},
        "415": {"description": "Unsupported content type."},
        "422": {"description": "Rows that do not fit the model's features; each field and row named."},
        "503": {"description": "No model loaded yet."},
    },
}
