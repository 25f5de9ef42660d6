"""Figures over the cases: 类案 counts (`stats`), the 考核 of units (`assessment`) and streamed spreadsheet
output (`tables`)."""
